"""The training code a recipe kind was written for: the default checkout pins it, and the job
puts the checkout's package ahead of the image's (the per-node script run for real in bash)."""

from __future__ import annotations

from pathlib import Path

from hyperpod_launcher.compose import plan
from hyperpod_launcher.training_code import PINS
from tests.unit import node_script

ADAPTER = (
    "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain",
    "instance_type=p5.48xlarge",
    "cluster=slurm",
)
TRN = (
    "recipes=training/llama/hf_llama3_8b_seq8k_trn1x4_pretrain",
    "instance_type=trn1.32xlarge",
    "cluster=slurm",
)


def test_pins_are_full_commits_of_the_stacks_repositories() -> None:
    assert set(PINS) == {"adapter", "neuron"}
    for pin in PINS.values():
        assert len(pin.commit) == 40 and int(pin.commit, 16) >= 0
        assert pin.repo.startswith("https://github.com/")


def test_the_default_checkout_pins_the_training_code(tmp_path: Path) -> None:
    for overrides, stack in ((ADAPTER, "adapter"), (TRN, "neuron")):
        spec = plan([*overrides, f"base_results_dir={tmp_path}"]).spec
        assert spec.code.location == PINS[stack].repo
        assert spec.code.commit == PINS[stack].commit
        assert spec.code_package == PINS[stack].package
    chosen = plan([*ADAPTER, f"base_results_dir={tmp_path}", "git.commit=abc1234"]).spec
    assert chosen.code.commit == "abc1234"
    branch = plan([*ADAPTER, f"base_results_dir={tmp_path}", "git.branch=dev"]).spec
    assert branch.code.commit is None
    other = plan(
        [*ADAPTER, f"base_results_dir={tmp_path}", "git.repo_url_or_path=https://x.example/y.git"]
    ).spec
    assert other.code.commit is None and other.code_package is None


def test_the_checkouts_package_comes_ahead_of_the_images(tmp_path: Path) -> None:
    the_plan = plan([*ADAPTER, f"base_results_dir={tmp_path}"])
    checkout = Path(the_plan.spec.workdir)
    (checkout / "src" / "hyperpod_nemo_adapter").mkdir(parents=True)
    script = the_plan.rendered.files["train_script.sh"].text
    proc, calls = node_script.run(
        script, tmp_path, env_names=("PYTHONPATH",), extra_env={"PYTHONPATH": "/image/site"}
    )
    assert proc.returncode == 0, proc.stderr
    assert calls[0]["env"] == {"PYTHONPATH": f"{checkout}/src:/image/site"}

    (checkout / "src" / "hyperpod_nemo_adapter").rmdir()
    proc, calls = node_script.run(script, tmp_path, env_names=("PYTHONPATH",))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == (
        "warning: the checkout has no src/hyperpod_nemo_adapter; the image's installed copy runs"
    )
