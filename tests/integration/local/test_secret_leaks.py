"""Canaries in every secret key, through every path a user can take; none may show anywhere.

Each launch gets a canary in git.token, the recipe's hf_access_token and a secret env_vars
entry (or, on this machine, env references to them), and the leak check reads everything:
all output, every file under the results, state and cache folders, the temporary folder the
launcher was given (TMPDIR), and, while the local job runs, every process's argv (the job's
leak_probe.py reports what it saw there).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, require, require_tool, run_cli, run_launcher

GIT = "ghp_leakcanary_git_1111"
HF = "hf_leakcanary_hub_2222"
WANDB = "wandb_leakcanary_3333"
AWS = "aws_leakcanary_session_4444"
CANARIES = (GIT, HF, WANDB, AWS)
LLAMA = "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain"
SECRET_KEYS = (
    "git.repo_url_or_path=https://git.example.com/org/adapter.git",
    f"git.token={GIT}",
    f"recipes.model.hf_access_token={HF}",
    f"+env_vars.WANDB_API_KEY={WANDB}",
)
BACKENDS = {
    "slurm": ("cluster=slurm", "instance_type=p5.48xlarge", "recipes.model.data.train_dir=/fsx/d"),
    "k8s": (
        "cluster=k8s",
        "instance_type=p5.48xlarge",
        "recipes.model.data.train_dir=/fsx/d",
        "+cluster.persistent_volume_claims=[{claimName:fsx,mountPath:/fsx}]",
        "recipes.exp_manager.exp_dir=/fsx/exp",
        "container=public.ecr.aws/docker/library/python:3.11-slim",
    ),
    "sm_jobs": (
        "cluster=sm_jobs",
        "instance_type=p5.48xlarge",
        "recipes.model.data.train_dir=s3://bucket/train",
        "cluster.sm_jobs_config.output_path=s3://bucket/out",
        "cluster.sm_jobs_config.role=arn:aws:iam::123456789012:role/sm",
        "cluster.sm_jobs_config.secrets.environment=true",
    ),
}
PROBE = REPO / "tests" / "fixtures" / "scripts" / "leak_probe.py"
REJECT_TOKEN = REPO / "tests" / "fixtures" / "scripts" / "reject_token.py"


class Watch:
    """The folders a launch may write to, and everything it printed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.results = root / "results"
        self.tmp = root / "tmp"
        self.tmp.mkdir()
        self.env = {
            "TMPDIR": str(self.tmp),
            "HPL_STATE_DIR": str(root / "state"),
            "XDG_STATE_HOME": str(root / "xdg-state"),
            "XDG_CACHE_HOME": str(root / "cache"),
            "AWS_SESSION_TOKEN": AWS,
            "AWS_DEFAULT_REGION": "us-west-2",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_EC2_METADATA_DISABLED": "true",
            "HF_TOKEN": HF,
            "PATH": f"{REPO / '.tools' / 'bin'}:{os.environ['PATH']}",
        }
        self.printed: list[tuple[str, str]] = []

    def launch(self, *argv: str, code: int | None = 0) -> subprocess.CompletedProcess[str]:
        proc = run_launcher(f"base_results_dir={self.results}", *argv, env=self.env)
        return self._seen(" ".join(argv), proc, code)

    def cli(self, *argv: str, code: int | None = 0) -> subprocess.CompletedProcess[str]:
        return self._seen(" ".join(argv), run_cli(*argv, env=self.env), code)

    def script(self, script: str, *argv: str, code: int | None = 0) -> subprocess.CompletedProcess:
        env = {**os.environ, **self.env, "BASE_RESULTS_DIR": str(self.results)}
        env["PYTHON"] = sys.executable
        proc = subprocess.run(
            ["bash", str(REPO / script), *argv], capture_output=True, text=True, env=env
        )
        return self._seen(f"{script} {' '.join(argv)}", proc, code)

    def _seen(
        self, what: str, proc: subprocess.CompletedProcess[str], code: int | None
    ) -> subprocess.CompletedProcess[str]:
        self.printed.append((what, proc.stdout + proc.stderr))
        if code is not None:
            assert proc.returncode == code, f"{what}:\n{proc.stdout}{proc.stderr}"
        return proc

    def files(self) -> Iterator[Path]:
        """Every file under the results, state, cache and temporary folders (torchrun's
        per-rank copies of the job's output in the launch folder included)."""
        for path in self.root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                yield path

    def assert_none_printed(self) -> None:
        for what, text in self.printed:
            for canary in CANARIES:
                assert canary not in text, f"{canary} printed by `{what}`:\n{text}"

    def assert_no_canary(self) -> None:
        self.assert_none_printed()
        for path in self.files():
            data = path.read_bytes()
            for canary in CANARIES:
                assert canary.encode() not in data, f"{canary} written to {path}"
        for entry in self.tmp.rglob("*"):
            assert not any(canary in entry.name for canary in CANARIES), entry


@pytest.fixture
def watch(tmp_path: Path) -> Watch:
    require_tool("helm")
    return Watch(tmp_path)


@pytest.mark.parametrize("backend", BACKENDS)
def test_dry_runs_sweeps_config_views_and_errors_never_show_a_secret(
    backend: str, watch: Watch
) -> None:
    if backend == "sm_jobs":
        require(importlib.util.find_spec("sagemaker") is not None, "the SageMaker SDK")
    on = (*BACKENDS[backend], LLAMA, *SECRET_KEYS)
    watch.launch(*on, "dry_run=true", "recipes.run.name=dry")
    sweep = watch.launch(
        *on, "dry_run=true", "recipes.run.name=sweep", "recipes.trainer.max_steps=10,20", "-m"
    )
    assert sweep.stdout.count("dry run: wrote") == 2
    assert list(watch.results.glob(".sweeps/*/multirun.yaml"))
    if backend == "slurm":  # Hydra's views compose the config only: one backend is enough
        for view in (("--cfg", "job"), ("--cfg", "hydra"), ("--cfg", "all"), ("--info",)):
            shown = watch.launch(*on, *view)
            assert "****" in shown.stdout, view
        resolved = watch.launch(*on, "--cfg", "job", "--resolve")
        assert re.search(r"hf_access_token: '?\*\*\*\*'?$", resolved.stdout, re.M)
    # A type error and an unparsable override on secret keys: one line, no value.
    typed = watch.launch(*on, f"git.token=[{GIT}]", code=2)
    assert typed.stderr.strip() == "error: git.token: expected str or null, got a list (not shown)"
    watch.launch(*on, f"git.token='{GIT}", code=2)
    watch.launch(*on, f"+env_vars.HF_TOKEN=[{HF}]", code=2)
    # An unexpected error while launching (a stray file where the checkout goes): one masked
    # line naming the log, which is masked too; also with HYDRA_FULL_ERROR=1.
    job_dir = watch.results / "stray"
    job_dir.mkdir(parents=True)
    (job_dir / "code").write_text("not a folder\n")
    watch.env["HYDRA_FULL_ERROR"] = "1"
    broken = watch.launch(*on, "recipes.run.name=stray", code=1)
    del watch.env["HYDRA_FULL_ERROR"]
    (line,) = broken.stderr.strip().splitlines()
    assert line.startswith("error: internal error while launching stray on "), line
    assert "details in" in line and "launcher_error-" in line
    watch.cli(
        "recipes", "show", LLAMA.split("=", 1)[1], *[a for a in on if a.startswith("recipes.")]
    )
    watch.cli("preflight", *on, code=None)
    watch.cli("jobs")
    watch.cli("status", "dry", code=None)
    watch.assert_no_canary()


def test_a_launch_script_resolving_an_env_reference_never_shows_it(watch: Watch) -> None:
    script = "launcher_scripts/llama/run_hf_llama3_8b_seq8k_gpu_p5x16_pretrain.sh"
    ref = "recipes.model.hf_access_token=${oc.env:HF_TOKEN}"
    shown = watch.script(script, ref, "--cfg", "job", "--resolve")
    assert re.search(r"hf_access_token: '?\*\*\*\*'?$", shown.stdout, re.M), shown.stdout
    watch.script(script, ref, f"git.token={GIT}", "dry_run=true")
    watch.assert_no_canary()


@pytest.mark.parametrize("detached", [False, True], ids=["foreground", "detached"])
def test_a_local_run_masks_its_output_logs_and_keeps_secrets_out_of_argv(
    detached: bool, watch: Watch
) -> None:
    require(importlib.util.find_spec("torch") is not None, "torch (torchrun)")
    watch.env["WANDB_API_KEY"] = WANDB
    run = watch.launch(
        f"training_cfg.entry_script={PROBE}",
        "training_cfg.run.name=probe",
        "+env_vars.HF_TOKEN=${oc.env:HF_TOKEN}",
        "+env_vars.WANDB_API_KEY=${oc.env:WANDB_API_KEY}",
        *(["cluster.detach=true"] if detached else []),
    )
    logs = watch.cli("logs", "probe", "--follow") if detached else run
    assert "rank 0 has **** and ****" in logs.stdout
    scans = re.findall(r"argv scan: (\d+) processes, 2 secrets, leaks in (.*)", logs.stdout)
    assert len(scans) == 2 and all(int(n) > 3 and leaks == "[]" for n, leaks in scans), scans
    if detached:  # its masking relay masks torchrun's per-rank copies once the job has ended
        wait_for_exit_of_processes_naming(watch.results)
    copies = list(watch.results.rglob("torchrun/**/stdout.log"))
    assert any("has **** and ****" in p.read_text() for p in copies), copies
    watch.cli("status", "probe")
    watch.cli("jobs")
    watch.assert_no_canary()


def wait_for_exit_of_processes_naming(folder: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        named = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            with contextlib.suppress(OSError):
                named += [cmdline] if str(folder).encode() in cmdline.read_bytes() else []
        if not named:
            return
        time.sleep(0.2)
    raise AssertionError(f"processes naming {folder} still run after {timeout} s")


def test_jobs_status_and_logs_mask_a_secret_that_reached_a_record_or_a_log(watch: Watch) -> None:
    """A launch that did not know a value for a secret (the job got it under another name, and
    the results folder's path holds it) kept it in its record and log; once it is a secret of
    the environment that follows the job, `jobs`, `status` and `logs` print it as ****."""
    require(importlib.util.find_spec("torch") is not None, "torch (torchrun)")
    results = watch.root / f"results-{HF}"
    unaware = {k: v for k, v in watch.env.items() if k != "HF_TOKEN"}
    run = run_launcher(
        f"base_results_dir={results}",
        f"training_cfg.entry_script={REJECT_TOKEN}",
        "training_cfg.run.name=noted",
        env={**unaware, "HUB_NOTE": HF},
    )
    assert run.returncode != 0 and f"rejected token {HF}" in run.stdout + run.stderr
    for argv in (("jobs",), ("jobs", "--all"), ("status", "noted", "--json")):
        assert "results-****" in watch.cli(*argv).stdout, argv
    assert "rejected token ****" in watch.cli("status", "noted").stdout
    for argv in (
        ("logs", "noted"),
        ("logs", "noted", "--rank", "0"),
        ("logs", str(results / "noted")),
    ):
        assert "was handed ****" in watch.cli(*argv).stdout, argv
    watch.assert_none_printed()
