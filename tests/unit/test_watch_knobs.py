"""The config's `watch` section: typed keys for the watchdog and the EFA tripwire, set on the
job as the HPL_* variables the per-node watcher reads (explicit env_vars win)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import run_launcher


def _exports(job: Path) -> set[str]:
    text = (job / "train_script.sh").read_text()
    return {line for line in text.splitlines() if line.startswith("export HPL_")}


def test_watch_keys_reach_the_job_as_variables(tmp_path: Path) -> None:
    done = run_launcher(
        "cluster=slurm", f"base_results_dir={tmp_path}", "watch.hang_timeout=1800",
        "watch.hang_factor=4.5", "watch.require_efa=true", "dry_run=true",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    exports = _exports(next(tmp_path.iterdir()))
    assert {"export HPL_HANG_TIMEOUT=1800", "export HPL_HANG_FACTOR=4.5",
            "export HPL_REQUIRE_EFA=1"} <= exports  # fmt: skip
    assert not any(line.startswith("export HPL_HANG_FLOOR") for line in exports)


def test_env_vars_win_over_watch_keys(tmp_path: Path) -> None:
    done = run_launcher(
        "cluster=slurm", f"base_results_dir={tmp_path}", "watch.hang_timeout=30",
        "+env_vars.HPL_HANG_TIMEOUT=0", "dry_run=true",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "export HPL_HANG_TIMEOUT=0" in _exports(next(tmp_path.iterdir()))


def test_bad_watch_values_stop_with_one_line(tmp_path: Path) -> None:
    for override, message in (
        ("watch.hang_timeout=-5", "error: watch.hang_timeout=-5: must be a number of at least 0"),
        ("watch.hang_factor=0.5", "error: watch.hang_factor=0.5: must be a number of at least 1"),
        ("watch.require_efa=maybe", "error: watch.require_efa: expected bool, got 'maybe'"),
        ("+watch.hang=1", "error: unknown key 'watch.hang'; valid keys: hang_factor, "
         "hang_floor, hang_timeout, require_efa"),
    ):  # fmt: skip
        done = run_launcher("cluster=slurm", f"base_results_dir={tmp_path}", override,
                            "dry_run=true")  # fmt: skip
        assert done.returncode == 2, override
        assert done.stderr.strip() == message or done.stdout.strip() == message, done
        assert not tmp_path.exists() or not any(tmp_path.iterdir())
