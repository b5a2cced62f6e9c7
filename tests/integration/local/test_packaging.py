"""`pip install .` gives a `hyperpod-launch` that works from any directory: the wheel ships
recipes_collection/, the shared templates/ and every backend package's templates and charts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import REPO


def _backend_template_files() -> list[str]:
    """Every file of the backends' templates/ and charts/ folders in the source tree, as a
    wheel path (the charts' built charts/ folders and Chart.lock are not shipped)."""
    backends = REPO / "hyperpod_launcher" / "backends"
    files = []
    for folder in (*backends.glob("*/templates"), backends / "k8s" / "charts"):
        for path in folder.rglob("*"):
            inside_chart = path.relative_to(folder).parts[1:2]
            if path.is_file() and path.name != "Chart.lock" and inside_chart != ("charts",):
                files.append(path.relative_to(REPO).as_posix())
    return sorted(files)


def test_wheel_ships_config_and_templates_and_the_console_script_runs(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "dist").glob("hyperpod_launcher-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for shipped in (
        "hyperpod_launcher/recipes_collection/config.yaml",
        "hyperpod_launcher/recipes_collection/cluster/slurm.yaml",
        "hyperpod_launcher/templates/common/train_script.sh.j2",
        "hyperpod_launcher/templates/launch_scripts/run_recipe.sh.j2",
        "hyperpod_launcher/backends/slurm/templates/sbatch.sh.j2",
        "hyperpod_launcher/backends/k8s/charts/pytorchjob/.helmignore",
        "hyperpod_launcher/examples/allreduce_smoke.py",
        *_backend_template_files(),
    ):
        assert shipped in names, shipped

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # The installed package answers, not the checkout the tests run from.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    def console(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(venv / "bin" / "hyperpod-launch"), *argv],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    for argv in (["--help"], ["help"]):
        shown = console(*argv)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.startswith("usage: hyperpod-launch recipes=<recipe>"), shown.stdout
        assert "\n  jobs " in shown.stdout and "powered by Hydra" not in shown.stdout
    shown = console("jobs", "--help")
    assert shown.returncode == 0 and shown.stdout.startswith("usage: hyperpod-launch jobs ")

    proc = console("cluster=slurm", "dry_run=true")
    assert proc.returncode == 0, proc.stderr
    job_dir = elsewhere / "results" / "allreduce-smoke"
    train = (job_dir / "train_script.sh").read_text()
    # The example script travels in the launch's folder, copied from the installed package.
    launch_id = json.loads((job_dir / "job.json").read_text())["launch_id"]
    shipped = job_dir / "launches" / launch_id / "scripts" / "allreduce_smoke.py"
    assert str(shipped) in train
    installed = next(venv.rglob("hyperpod_launcher/examples/allreduce_smoke.py"))
    assert shipped.read_bytes() == installed.read_bytes()
    assert str(REPO) not in train
    # The sbatch script comes from the installed slurm backend package's templates.
    (sbatch,) = job_dir.glob("*_submission.sh")
    assert "#SBATCH --nodes=1\n" in sbatch.read_text()

    # The chart a Kubernetes launch copies comes from the installed backend package.
    proc = console("cluster=k8s", "container=example.com/train:1", "dry_run=true")
    assert proc.returncode == 0, proc.stderr
    chart_yaml = elsewhere / "results" / "allreduce-smoke" / "k8s_template" / "Chart.yaml"
    installed = next(venv.rglob("hyperpod_launcher/backends/k8s/charts/pytorchjob/Chart.yaml"))
    assert chart_yaml.read_bytes() == installed.read_bytes()
    assert (chart_yaml.parent / "charts" / "hpl-common" / "Chart.yaml").is_file()
