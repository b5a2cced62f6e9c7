"""Every command in the code blocks of README.md and docs/ runs and does what the text says.

Conventions (see CONTRIBUTING.md): a line `# error: <message>` right after a command means it
must fail with `error: <message>` on stderr, and `# fails: <text>` that it must exit non-zero
printing `<text>` (a report such as preflight's); `<!-- readme-test: skip <why> -->` right
before a code block leaves that block's commands out. Anything else must succeed. Commands
that would submit run as dry runs; `/fsx/...` paths live under a temporary folder;
placeholders get test values.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
PROGRAMS = r"python main\.py|hyperpod-launch|bash launcher_scripts/\S+"
COMMAND = re.compile(rf"^((?:[A-Z_][A-Z0-9_]*=\S*\s+)*)({PROGRAMS})(.*)$")
PLACEHOLDERS = {
    "<recipe>": "training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain",
    "<backend>": "slurm",
    "<overrides>": "",
    "<sha>": "0123456789abcdef0123456789abcdef01234567",
    "<account>": "123456789012",
    "<region>": "us-west-2",
    "<image>": "example.com/train:1",
    " ... ": " training_cfg.run.name=llama-8b ",  # `python main.py ... --wait`: the job below
}
FAILS = "# fails: "
JOB_COMMANDS = ("jobs", "status", "logs", "cancel", "recipes", "preflight", "schema")


@dataclass(frozen=True)
class Example:
    page: str
    line: int
    env: tuple[tuple[str, str], ...]
    program: str
    args: str
    error: str | None

    def __str__(self) -> str:
        return f"{self.page}:{self.line}: {self.program}{self.args}"


def examples(text: str, page: str = "README.md") -> list[Example]:
    found: list[Example] = []
    skip = False
    lines = text.splitlines()
    in_block = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            in_block = not in_block
            if in_block:
                skip = i > 0 and lines[i - 1].strip().startswith("<!-- readme-test: skip")
            i += 1
            continue
        if not in_block or skip:
            i += 1
            continue
        start = i
        while line.endswith("\\") and i + 1 < len(lines):
            i += 1
            line = line[:-1] + " " + lines[i].strip()
        for part in line.split("&&"):
            match = COMMAND.match(part.strip())
            if not match:
                continue
            args = re.sub(r"\s+#.*$", "", match.group(3))  # a trailing comment
            following = lines[i + 1].strip() if i + 1 < len(lines) else ""
            error = following[2:] if following.startswith("# error: ") else None
            if following.startswith(FAILS):
                error = following[len(FAILS) :]
            env = tuple(tuple(a.split("=", 1)) for a in match.group(1).split())
            found.append(Example(page, start + 1, env, match.group(2), args, error))
        i += 1
    return found


EXAMPLES = [e for p in PAGES for e in examples(p.read_text(), str(p.relative_to(REPO)))]


def test_the_docs_have_examples_to_run() -> None:
    readme = [e for e in EXAMPLES if e.page == "README.md"]
    assert any(e.program == "python main.py" and not e.args.strip() for e in readme)
    assert {e.page for e in EXAMPLES} > {"README.md"}
    assert sum(e.program.startswith("bash launcher_scripts/") for e in EXAMPLES) >= 1


def test_the_conventions_are_parsed() -> None:
    text = "\n".join(
        [
            "```bash",
            "python main.py recipes=a \\",
            "  cluster=slurm  # a comment",
            "# error: recipes=a: unknown recipe",
            "pip install x && hyperpod-launch recipes list",
            "```",
            "<!-- readme-test: skip needs a cluster -->",
            "```bash",
            "hyperpod-launch jobs",
            "```",
        ]
    )
    found = examples(text)
    assert [(e.program, e.args.split(), e.error) for e in found] == [
        ("python main.py", ["recipes=a", "cluster=slurm"], "error: recipes=a: unknown recipe"),
        ("hyperpod-launch", ["recipes", "list"], None),
    ]


def argv(example: Example, tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    text = example.args
    for name, value in PLACEHOLDERS.items():
        text = text.replace(name, value)
    text = text.replace("/fsx/", f"{tmp_path}/fsx/")
    assert not re.search(r"<[a-z_-]+>", text), f"{example}: no test value for a placeholder"
    args = shlex.split(text)
    env = {k: v.replace("/fsx/", f"{tmp_path}/fsx/") for k, v in example.env}
    if example.program.startswith("bash "):
        script = example.program.split()[1]
        env.update({"PYTHON": sys.executable, "BASE_RESULTS_DIR": str(tmp_path / "results")})
        return ["bash", str(REPO / script), *args, "dry_run=true"], env
    base = [sys.executable, str(REPO / "main.py")]
    if example.program == "hyperpod-launch":
        base = [sys.executable, "-m", "hyperpod_launcher"]
        if args and args[0] in JOB_COMMANDS:
            return [*base, *args], env
    chosen = ("recipes=", "cluster=", "--config-name=")  # another config picks its own cluster
    local = not any(a.startswith(chosen) for a in args) or "cluster=local" in args
    args = [a for a in args if not a.startswith("base_results_dir=")]
    # Hydra reads its overrides as one run of words: flags (and --cfg's value) go first.
    flags = [a for a in args if a.startswith("-") or "=" not in a]
    overrides = [a for a in args if a not in flags]
    ours = [f"base_results_dir={tmp_path / 'results'}"]
    if not local and "--cfg" not in args:
        ours.append("dry_run=true")
    return [*base, *flags, *ours, *overrides], env


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The docs' shared filesystem (/fsx) and a finished local job named llama-8b, which
    the job commands' examples follow."""
    root = tmp_path_factory.mktemp("readme")
    (root / "fsx" / "code").mkdir(parents=True)
    (root / "fsx" / "code" / "train.py").write_text("print('train')\n")
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "main.py"),
            "training_cfg.run.name=llama-8b",
            f"base_results_dir={root / 'results'}",
        ],
        capture_output=True,
        text=True,
        env=environment(root),
        cwd=REPO,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return root


def environment(root: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        **os.environ,
        "HPL_STATE_DIR": str(root / "state"),
        "XDG_CACHE_HOME": str(root / "cache"),
        "AWS_DEFAULT_REGION": "us-west-2",  # a SageMaker user's configured region
        **(extra or {}),
    }


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_documented_example(example: Example, sandbox: Path) -> None:
    command, env = argv(example, sandbox)
    proc = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=environment(sandbox, env),
        cwd=REPO,
        check=False,
        timeout=600,
    )
    if proc.returncode and "clone" in proc.stderr and "github.com" in proc.stderr:
        # SageMaker's dry run lets the SDK clone the training adapter, as submit does.
        pytest.xfail("needs the network: the SageMaker SDK clones the adapter from github.com")
    if example.error is None:
        assert proc.returncode == 0, f"{example}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    else:
        assert proc.returncode != 0, f"{example}: expected to fail\n{proc.stdout[-3000:]}"
        printed = proc.stderr if example.error.startswith("error: ") else proc.stdout + proc.stderr
        assert example.error in printed, f"{example}\n{printed[-3000:]}"
