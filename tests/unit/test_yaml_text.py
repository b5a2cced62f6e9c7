"""One YAML writer (yaml_text.dump) for every YAML file the launcher writes or prints."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
import yaml

from hyperpod_launcher.backends.k8s.backend import VALUES
from hyperpod_launcher.cli import recipe_commands
from hyperpod_launcher.launch.compose import plan
from hyperpod_launcher.util import yaml_text

PACKAGE = Path(yaml_text.__file__).parent


def test_dump_keeps_order_and_values_and_writes_multi_line_text_as_a_block() -> None:
    data = {
        "zeta": 1,
        "alpha": {"script": "#!/bin/bash\necho hi\n", "flags": ["--a", "--b"]},
        "looks_typed": ["true", "null", "0123", "1e3", "~"],
        "long": "x" * 150,
        "empty": {},
    }
    text = yaml_text.dump(data)
    assert yaml.safe_load(text) == data
    assert list(yaml.safe_load(text)) == ["zeta", "alpha", "looks_typed", "long", "empty"]
    assert "  script: |\n    #!/bin/bash\n    echo hi\n" in text


def test_no_other_module_writes_yaml_itself() -> None:
    writer = re.compile(r"\b(yaml\.(safe_)?dump|safe_dump|to_yaml)\(")
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.name != "yaml_text.py" and writer.search(path.read_text())
    ]
    assert offenders == []


def test_helm_values_carry_the_node_script_as_a_literal_block(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text("print('hi')\n")
    launch = plan(
        [
            "cluster=k8s",
            f"training_cfg.entry_script={script}",
            "training_cfg.run.name=values-text",
            f"base_results_dir={tmp_path / 'results'}",
            "container=example/image:1",
        ]
    )
    text = launch.request.files[VALUES].text
    assert "  train_script.sh: |\n    #!/bin/bash\n" in text
    header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
    assert header + yaml_text.dump(yaml.safe_load(text)) == text


def test_recipes_show_prints_the_recipe_through_the_one_writer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    name = "training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain"
    args = argparse.Namespace(name=name, overrides=["recipes.run.name='two\nlines'"], schema=False)
    assert recipe_commands.recipes_show(args) == 0
    out = capsys.readouterr().out
    body = "".join(line for line in out.splitlines(keepends=True) if not line.startswith("#"))
    assert "  name: |-\n    two\n    lines\n" in body
    assert yaml_text.dump(yaml.safe_load(body)) == body
