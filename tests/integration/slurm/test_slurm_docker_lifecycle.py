"""Docker mode on the real Slurm testbed, with a recording docker stand-in on PATH (the testbed
has no docker engine): the stand-in starts "containers" outside the step's process tree and
ignores the client's signals, as an engine with bash as the container's PID 1 does, so only the
launcher's own removal ends them. Cancel, a time-out and a failure on another node must leave
none behind.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import testbed

from tests.conftest import REPO, run_launcher

pytestmark = pytest.mark.slurm

SHIM = REPO / "tests" / "fixtures" / "docker_shim"
SCRIPTS = REPO / "tests" / "fixtures" / "scripts"


def launch(
    root: Path,
    name: str,
    script: Path,
    *overrides: str,
    image: str = "pytorch:24.01",
    **env_add: str,
) -> tuple[str, dict[str, str]]:
    state = root / name / "containers"
    state.mkdir(parents=True)
    env = {
        "PATH": f"{SHIM}:{os.environ['PATH']}",
        "DOCKER_SHIM_STATE": str(state),
        "DOCKER_SHIM_LOG": str(root / name / "docker.jsonl"),
        "HPL_STATE_DIR": str(root / "state"),
        "XDG_CACHE_HOME": str(root / "cache"),
        **env_add,
    }
    proc = run_launcher(
        "cluster=slurm",
        f"base_results_dir={root / 'results'}",
        "cluster.exclusive=false",
        f"container={image}",
        "recipes=custom_script/allreduce_smoke",
        f"training_cfg.run.name={name}",
        "training_cfg.run.nodes=2",
        "training_cfg.run.ntasks_per_node=1",
        f"training_cfg.entry_script={script}",
        "training_cfg.script_args=[]",
        *overrides,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout
    match = re.search(r"submitted slurm job (\d+)", proc.stdout)
    assert match, proc.stdout
    return match.group(1), env


def calls(env: dict[str, str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in Path(env["DOCKER_SHIM_LOG"]).read_text().splitlines()]


def wait_for(predicate: object, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


def containers_left(env: dict[str, str]) -> list[str]:
    return sorted(p.name for p in Path(env["DOCKER_SHIM_STATE"]).glob("*.json"))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"


def running(script: Path) -> list[int]:
    """Processes whose command line runs `script` (the training processes themselves)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if proc.name.isdigit() and str(script).encode() in argv and alive(int(proc.name)):
            found.append(int(proc.name))
    return found


def started(env: dict[str, str], job_id: str) -> dict[str, int]:
    """name -> pid of the job's containers once both nodes run one."""
    state = Path(env["DOCKER_SHIM_STATE"])
    wait_for(lambda: len(list(state.glob("*.json"))) == 2, "both containers never started")
    return {p.stem: json.loads(p.read_text())["pid"] for p in state.glob("*.json")}


def test_cancel_removes_every_nodes_container(tmp_path: Path, slurm_cluster: None) -> None:
    job_id, env = launch(tmp_path, "docker-cancel", SCRIPTS / "sleep.py")
    pids = started(env, job_id)
    assert sorted(pids) == [f"hpl-{job_id}-node1-0", f"hpl-{job_id}-node2-0"]
    run = next(c for c in calls(env) if c["argv"][0] == "run")  # type: ignore[index]
    argv = run["argv"]
    assert isinstance(argv, list)
    for flag in ("--init", "--ulimit=memlock=-1", "--ulimit=stack=67108864", "--rm"):
        assert flag in argv
    assert f"--label=hyperpod-launcher.job={job_id}" in argv
    time.sleep(2)
    assert all(alive(pid) for pid in pids.values())

    subprocess.run(["scancel", job_id], check=True)
    fields = testbed.wait_for_job(job_id, timeout=120)
    assert fields["JobState"] == "CANCELLED"
    wait_for(lambda: not containers_left(env), f"containers left: {containers_left(env)}")
    assert not any(alive(pid) for pid in pids.values())
    wait_for(lambda: not running(SCRIPTS / "sleep.py"), "training processes outlived the job")
    removed = {c.get("removed") for c in calls(env)} - {None}
    assert removed == set(pids)  # each removed by name, by its node's trap


def test_a_failure_on_another_node_removes_the_survivors_container(
    tmp_path: Path, slurm_cluster: None
) -> None:
    script = tmp_path / "fail_on_node2.py"
    script.write_text(
        "import os, socket, sys, time\n"
        "if socket.gethostname() == 'node2':\n"
        "    time.sleep(3)\n"
        "    sys.exit(3)\n"
        "print('sleeping', flush=True)\n"
        "time.sleep(600)\n"
    )
    job_id, env = launch(tmp_path, "docker-fail", script)
    pids = started(env, job_id)
    fields = testbed.wait_for_job(job_id, timeout=180)
    assert fields["JobState"] == "FAILED"
    assert containers_left(env) == []
    assert not any(alive(pid) for pid in pids.values())
    wait_for(lambda: not running(script), "the survivor's training process outlived the job")


def test_a_time_limit_removes_every_nodes_container(tmp_path: Path, slurm_cluster: None) -> None:
    """Slurm ends a timed-out step with SIGTERM (then SIGKILL): each node's trap removes its
    container by name, so none runs on past the job's time limit."""
    job_id, env = launch(
        tmp_path, "docker-timeout", SCRIPTS / "sleep.py", "training_cfg.run.time_limit=1"
    )
    pids = started(env, job_id)
    assert sorted(pids) == [f"hpl-{job_id}-node1-0", f"hpl-{job_id}-node2-0"]
    fields = testbed.wait_for_job(job_id, timeout=300)
    assert fields["JobState"] == "TIMEOUT"
    wait_for(lambda: not containers_left(env), f"containers left: {containers_left(env)}")
    assert not any(alive(pid) for pid in pids.values())
    wait_for(lambda: not running(SCRIPTS / "sleep.py"), "training processes outlived the job")
    removed = {c.get("removed") for c in calls(env)} - {None}
    assert removed == set(pids)


ECR_IMAGE = "123456789012.dkr.ecr.us-west-2.amazonaws.com/train:1"
WANTED = ("aws", "login", "pull", "run")


def job_log(job_dir: Path, job_id: str) -> str:
    return "".join(p.read_text() for p in sorted(job_dir.glob(f"log-*_{job_id}.*")))


def test_an_ecr_image_is_logged_in_and_pulled_once_per_node_before_it_runs(
    tmp_path: Path, slurm_cluster: None
) -> None:
    job_id, env = launch(tmp_path, "ecr", SCRIPTS / "ranks.py", image=ECR_IMAGE)
    fields = testbed.wait_for_job(job_id, timeout=240)
    assert fields["JobState"] == "COMPLETED", fields
    seen = calls(env)
    for node in ("node1", "node2"):
        verbs = [c["argv"][0] for c in seen if c["node"] == node and c["argv"][0] in WANTED]
        assert verbs == ["aws", "login", "pull", "run"], verbs
        (login,) = [c for c in seen if c["node"] == node and c["argv"][0] == "login"]
        assert login["argv"][-1] == "123456789012.dkr.ecr.us-west-2.amazonaws.com"
        assert login["password_given"] is True
        (aws,) = [c for c in seen if c["node"] == node and c["argv"][0] == "aws"]
        assert aws["argv"][1:] == ["ecr", "get-login-password", "--region", "us-west-2"]


def test_an_image_no_node_can_pull_fails_the_job_with_one_line(
    tmp_path: Path, slurm_cluster: None
) -> None:
    job_id, env = launch(
        tmp_path, "nopull", SCRIPTS / "ranks.py", image="pytorch:missing",
        DOCKER_SHIM_MISSING="pytorch:missing",
    )  # fmt: skip
    fields = testbed.wait_for_job(job_id, timeout=240)
    assert fields["JobState"] == "FAILED", fields
    text = job_log(tmp_path / "results" / "nopull", job_id)
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert errors and set(errors) <= {
        f"error: cannot pull pytorch:missing on {node}: Error response from daemon: manifest "
        "for pytorch:missing not found"
        for node in ("node1", "node2")
    }, text
    assert not [c for c in calls(env) if c["argv"][0] == "run"]


def test_without_aws_credentials_an_ecr_login_fails_the_job_with_one_line(
    tmp_path: Path, slurm_cluster: None
) -> None:
    job_id, env = launch(
        tmp_path, "nocreds", SCRIPTS / "ranks.py", image=ECR_IMAGE, AWS_SHIM_NO_CREDENTIALS="1"
    )
    fields = testbed.wait_for_job(job_id, timeout=240)
    assert fields["JobState"] == "FAILED", fields
    text = job_log(tmp_path / "results" / "nocreds", job_id)
    assert "error: cannot log in to 123456789012.dkr.ecr.us-west-2.amazonaws.com on node" in text
    assert "with this node's AWS credentials: Unable to locate credentials." in text
    assert not [c for c in calls(env) if c["argv"][0] in ("pull", "run")]
