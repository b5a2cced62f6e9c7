"""The open entry's `hpl-metrics` callback ships beside it on every backend, so the lines
appear in job images without the launcher installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from hyperpod_launcher.backends.sm_jobs import runner
from hyperpod_launcher.launch.compose import plan
from hyperpod_launcher.telemetry.node_watch import PREFIX, parse_line
from hyperpod_launcher.util import resources

OPEN_SFT = (
    "recipes=fine-tuning/hf/open_causal_lm_gpu_sft_lora",
    "recipes.model.hf_model_name_or_path=Qwen/Qwen3-8B",
)
FSX_DATA = "recipes.model.data.train_dir=/fsx/data/sft"
CALLBACK = Path(resources.example_path("hpl_metrics.py")).read_text()
ENTRY = Path(resources.example_path("open_ft.py")).read_text()

# The entry's own import of the callback, with the launcher made unimportable.
_PROBE = """
import sys
sys.modules["hyperpod_launcher"] = None  # as in an image without the launcher
import open_ft
(callback,) = open_ft.hpl_metrics()
from transformers import TrainerCallback
assert isinstance(callback, TrainerCallback), type(callback)
import hpl_metrics
print(type(callback).__module__)
print(hpl_metrics.format_line({"event": "step", "step": 1}))
"""


def _probe(folder: Path) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(folder)}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], cwd=folder, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines()


def test_slurm_job_folder_carries_the_callback_and_the_entry_imports_it_alone(
    tmp_path: Path,
) -> None:
    the_plan = plan((*OPEN_SFT, FSX_DATA, "cluster=slurm", f"base_results_dir={tmp_path}"))
    shipped = {path: text for path, (text, _) in the_plan.files.items() if "scripts/" in path}
    names = {os.path.basename(path): text for path, text in shipped.items()}
    assert names == {"open_ft.py": ENTRY, "hpl_metrics.py": CALLBACK}
    folder = tmp_path / "scripts"
    folder.mkdir()
    for name, text in names.items():
        (folder / name).write_text(text)
    module, line = _probe(folder)
    assert module == "hpl_metrics"  # the shipped copy, not the launcher's
    assert line.startswith(PREFIX) and parse_line(line) == {"event": "step", "step": 1}


def test_k8s_scripts_configmap_carries_the_callback(tmp_path: Path) -> None:
    the_plan = plan((*OPEN_SFT, FSX_DATA, "cluster=k8s", "container=example.com/train:1",
                     "+cluster.persistent_volume_claims=[{claimName:fsx,mountPath:/fsx}]",
                     "recipes.exp_manager.exp_dir=/fsx/exp",
                     f"base_results_dir={tmp_path}"))  # fmt: skip
    values = yaml.safe_load(the_plan.files["k8s_template/values.yaml"][0])
    assert values["scripts"]["open_ft.py"] == ENTRY
    assert values["scripts"]["hpl_metrics.py"] == CALLBACK


def test_sagemaker_source_folder_carries_the_callback(tmp_path: Path) -> None:
    the_plan = plan((*OPEN_SFT, "recipes.model.data.train_dir=s3://bucket/sft",
                     "cluster=sm_jobs", "instance_type=ml.p5.48xlarge",
                     "cluster.sm_jobs_config.output_path=s3://bucket/out",
                     f"base_results_dir={tmp_path}"))  # fmt: skip
    (request_path,) = [p for p in the_plan.files if p.endswith(runner.REQUEST)]
    request = json.loads(the_plan.files[request_path][0])
    here = tmp_path / "job"
    for path, (text, _) in the_plan.files.items():
        (here / path).parent.mkdir(parents=True, exist_ok=True)
        (here / path).write_text(text)
    source_dir = runner.ship_sources(request, here)  # what the SDK uploads
    assert (source_dir / "hpl_metrics.py").read_text() == CALLBACK
    assert (source_dir / "open_ft.py").read_text() == ENTRY


def test_other_scripts_have_no_companions(tmp_path: Path) -> None:
    script = tmp_path / "open_ft.py"
    shutil.copy(resources.example_path("open_ft.py"), script)
    assert resources.example_companions(str(script)) == []
    assert resources.example_companions(resources.example_path("allreduce_smoke.py")) == []


def test_callback_and_watcher_share_the_prefix() -> None:
    import hyperpod_launcher.examples.hpl_metrics as callback

    assert callback.PREFIX == PREFIX
