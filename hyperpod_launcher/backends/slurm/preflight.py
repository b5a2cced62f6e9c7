"""Slurm preflight: what slurmctld and a compute node say about the composed job.

Cheap (local): sbatch on PATH, a .sqsh image readable here. Asking the cluster: partition,
account and QOS exist; the nodes fit the partition; `sbatch --test-only` with the exact
batch script and flags (written to a temporary folder, not the job folder); and a 1-node
`srun` that reads a marker file written here into base_results_dir (and the .sqsh image):
a folder the nodes cannot see fails there, not an hour into the job.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import uuid
from typing import TYPE_CHECKING

from hyperpod_launcher.prepare.preflight import Check, Result, fail, ok, warn
from hyperpod_launcher.stacks import train_stack

if TYPE_CHECKING:
    from hyperpod_launcher.launch.execute import Plan

COMMAND_TIMEOUT = 20  # seconds for one Slurm command
SRUN_TIMEOUT = 60
TEST_ONLY = re.compile(r"Job \d+ to start at (\S+) using (\d+) processors on nodes (\S+)")


def _run(argv: list[str], timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 124, "", f"no answer within {timeout:g} s")
    except FileNotFoundError:
        return subprocess.CompletedProcess(argv, 127, "", f"{argv[0]} not found on PATH")


def _said(proc: subprocess.CompletedProcess[str]) -> str:
    text = (proc.stderr.strip() or proc.stdout.strip() or f"exit {proc.returncode}").splitlines()
    return text[-1].removeprefix("sbatch: error: ").removeprefix("srun: error: ")


def _partition(plan: Plan) -> str | None:
    return plan.spec.opts.partition or None


def _partitions() -> tuple[dict[str, int], str | None, str]:
    """{partition: node count}, the default partition, and an error ('' when fine)."""
    proc = _run(["sinfo", "-h", "-a", "-o", "%P %D"])
    if proc.returncode != 0:
        return {}, None, _said(proc)
    counts: dict[str, int] = {}
    default = None
    for line in proc.stdout.split("\n"):
        if not line.strip():
            continue
        name, count = line.split()
        if name.endswith("*"):
            name = name[:-1]
            default = name
        counts[name] = counts.get(name, 0) + int(count)
    return counts, default, ""


def check_sbatch_on_path() -> Result:
    path = shutil.which("sbatch")
    if path is None:
        return fail("sbatch is not on PATH", "run the launcher on a Slurm login node")
    return ok(f"sbatch at {path}")


def check_image_here(plan: Plan) -> Result:
    image = plan.spec.image or ""
    if not image.endswith(".sqsh"):
        return ok("no .sqsh image to read" if not image else f"image {image} (pulled by the nodes)")
    if not os.access(image, os.R_OK):
        return warn(
            f"container {image} is not readable on this host",
            "check that the path is on shared storage (the nodes read it; see the srun check)",
        )
    return ok(f"container {image} is readable here")


def check_partition(plan: Plan) -> Result:
    counts, default, error = _partitions()
    if error:
        return fail(f"sinfo failed: {error}", "check that slurmctld is reachable (sinfo)")
    wanted = _partition(plan) or default
    if wanted is None:
        return fail("no partition given and the cluster has no default", "set cluster.partition")
    if wanted not in counts:
        return fail(
            f"partition {wanted!r} does not exist",
            f"set cluster.partition to one of {', '.join(sorted(counts))}",
        )
    nodes = plan.spec.nodes
    if nodes > counts[wanted]:
        return fail(
            f"the job asks for {nodes} nodes, partition {wanted!r} has {counts[wanted]}",
            f"lower recipes.trainer.num_nodes to at most {counts[wanted]} or pick a larger "
            "partition",
        )
    return ok(f"partition {wanted!r} has {counts[wanted]} nodes, the job needs {nodes}")


def _association(kind: str, name: str | None) -> Result:
    if not name:
        return ok(f"no {kind} given")
    proc = _run(["sacctmgr", "-nP", "show", kind, name, "format=name"])
    if proc.returncode != 0:
        return warn(
            f"cannot ask for {kind} {name!r}: {_said(proc)}",
            f"check the {kind} with your administrator (accounting is not reachable)",
        )
    if name not in proc.stdout.split():
        return fail(f"{kind} {name!r} does not exist", f"set cluster.{kind} to one you belong to")
    return ok(f"{kind} {name!r} exists")


def _script_copy(plan: Plan, folder: str) -> list[str]:
    """The exact sbatch argv, with the batch script written into `folder` instead."""
    argv = list(plan.request.submit_argv)
    script = argv[-1]
    relpath = os.path.relpath(script, plan.spec.launch_dir)
    copy = os.path.join(folder, os.path.basename(relpath))
    with open(copy, "w", encoding="utf-8") as handle:
        handle.write(plan.request.files[relpath].text)
    return [a for a in argv[:-1] if a != "--parsable"] + ["--test-only", copy]


def check_test_only(plan: Plan) -> Result:
    with tempfile.TemporaryDirectory(prefix="hpl-preflight-") as folder:
        argv = _script_copy(plan, folder)
        proc = _run(argv)
    said = proc.stderr.strip() + proc.stdout.strip()
    if proc.returncode != 0:
        return fail(f"sbatch --test-only refused the job: {_said(proc)}", "fix the sbatch option")
    found = TEST_ONLY.search(said)
    if not found:
        return ok("sbatch --test-only accepts the job")
    start, _, nodes = found.groups()
    return ok(f"sbatch --test-only accepts the job: it would start at {start} on {nodes}")


def check_visible_from_a_node(plan: Plan) -> Result:
    """Write a marker into base_results_dir here; a 1-node srun must see it (and the image)."""
    root = plan.spec.results_root
    try:
        os.makedirs(root, exist_ok=True)
        marker = os.path.join(root, f".hpl-preflight-{uuid.uuid4().hex[:8]}")
        with open(marker, "w", encoding="utf-8") as handle:
            handle.write("written by hyperpod-launch preflight\n")
    except OSError as err:
        return fail(
            f"cannot write to base_results_dir {root}: {err.strerror}", "pick a writable folder"
        )
    image = plan.spec.image or ""
    image = image if image.endswith(".sqsh") else ""
    argv = ["srun", "-N1", "-n1", "--immediate=30", "--time=1", "--job-name=hpl-preflight"]
    partition = _partition(plan)
    if partition:
        argv.append(f"--partition={partition}")
    for key, value in (("account", plan.spec.opts.account), ("qos", plan.spec.opts.qos)):
        if value:
            argv.append(f"--{key}={value}")
    probe = 'test -f "$1"; seen=$?; r=0; [ -z "$2" ] || test -r "$2" || r=1; echo "$seen $r"'
    try:
        proc = _run([*argv, "sh", "-c", probe, "probe", marker, image], SRUN_TIMEOUT)
    finally:
        os.unlink(marker)
    if proc.returncode != 0:
        return fail(f"a 1-node srun did not run: {_said(proc)}", "check the partition and account")
    seen, readable = [*proc.stdout.split(), "1", "1"][:2]
    if seen != "0":
        return fail(
            f"base_results_dir {root} is not visible from the compute nodes (a file written "
            "here is missing there)",
            "set base_results_dir to shared storage every node mounts (e.g. /fsx/results)",
        )
    if readable != "0":
        return fail(
            f"container {image} is not readable on the compute nodes",
            "put the .sqsh file on shared storage, or import it with enroot",
        )
    extra = f" and reads {image}" if image else ""
    return ok(f"a compute node sees base_results_dir {root}{extra}")


def checks(plan: Plan) -> list[Check]:
    opts = plan.spec.opts
    return [
        Check("slurm sbatch", check_sbatch_on_path),
        Check("slurm image", lambda: check_image_here(plan), cheap=True),
        *train_stack.checks(plan.spec),
        Check("slurm partition", lambda: check_partition(plan)),
        Check("slurm account", lambda: _association("account", opts.account)),
        Check("slurm qos", lambda: _association("qos", opts.qos)),
        Check("slurm sbatch --test-only", lambda: check_test_only(plan)),
        Check(
            "slurm shared folder", lambda: check_visible_from_a_node(plan), timeout=SRUN_TIMEOUT + 5
        ),
    ]
