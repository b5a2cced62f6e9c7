"""Amazon Nova on Kubernetes: every Nova recipe renders the manifests SageMaker HyperPod
v1.5.1's launcher renders for it (tests/fixtures/nova_k8s/, produced once by that launcher; its
SOURCE.md says how), and they are valid for the API server and the training operator.

The comparison is by object (kind and name) and by value: key order, YAML quoting and empty
fields (`env:` with nothing in it) do not count, and each ConfigMap's config.yaml is compared
as the YAML the Nova image reads. Our job names carry a launch suffix; HyperPod's, under its own
tests, carry none, so ours is mapped back to the run name before comparing.
"""

from __future__ import annotations

import difflib
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hyperpod_launcher.launch.compose import plan
from tests.conftest import REPO, require_tool
from tests.integration.k8s import k8s_schemas

FIXTURES = REPO / "tests" / "fixtures" / "nova_k8s"
RECIPES = sorted(
    str(p.relative_to(REPO / "recipes_collection" / "recipes").with_suffix(""))
    for p in (REPO / "recipes_collection" / "recipes").glob("*/nova/*.yaml")
)
RUN_NAME = "nova-case"
CONTAINER = "test.example/nova:latest"
# HyperPod's single-job template carries the AWS account its launcher looked up (moto's STS
# answered 123456789012); ours takes it from env_vars. Its PPO services carry none.
ACCOUNT = "+env_vars.X_AMZ_SOURCE_ACCOUNT=123456789012"
OPTIONS = (
    "cluster.namespace=team-a",
    "cluster.service_account_name=trainer",
    "cluster.priority_class_name=high",
    "+cluster.annotations.note=kept",
    "+cluster.custom_labels.team=nova",
    "+cluster.label_selector.required.zone=[a,b]",
)
CASES: dict[str, tuple[str, tuple[str, ...]]] = {
    recipe.replace("/", "_"): (recipe, () if recipe.endswith("_ppo") else (ACCOUNT,))
    for recipe in RECIPES
}
CASES["options_sft"] = ("fine-tuning/nova/nova_lite_p5_gpu_sft", (ACCOUNT, *OPTIONS))
CASES["options_ppo"] = ("fine-tuning/nova/nova_micro_p5_gpu_ppo", OPTIONS)


def _render(case: str, tmp_path: Path) -> tuple[Any, list[dict[str, Any]], list[str], str]:
    recipe, extra = CASES[case]
    the_plan = plan(
        (
            f"recipes={recipe}",
            "cluster=k8s",
            f"container={CONTAINER}",
            f"recipes.run.name={RUN_NAME}",
            "~env_vars.NCCL_DEBUG",
            *extra,
            f"base_results_dir={tmp_path}",
        ),
        launch_id="nova-launch",
    )
    objects, errors, text = k8s_schemas.write_and_template(the_plan, require_tool("helm"))
    return the_plan, objects, errors, text


def _pruned(node: Any) -> Any:
    if isinstance(node, dict):
        pruned = {k: _pruned(v) for k, v in node.items()}
        return {k: v for k, v in pruned.items() if v not in (None, {}, [])}
    if isinstance(node, list):
        return [_pruned(v) for v in node]
    return node


def _objects(text: str) -> dict[tuple[str, str], Any]:
    found = {}
    for obj in yaml.safe_load_all(text):
        if not obj:
            continue
        if obj["kind"] == "ConfigMap":
            obj["data"] = {k: yaml.safe_load(v) for k, v in obj["data"].items()}
        found[(obj["kind"], obj["metadata"]["name"])] = _pruned(obj)
    return found


def _diff(ours: Any, theirs: Any) -> str:
    a = yaml.safe_dump(theirs, sort_keys=True).splitlines()
    b = yaml.safe_dump(ours, sort_keys=True).splitlines()
    return "\n".join(difflib.unified_diff(a, b, "hyperpod", "ours", lineterm=""))


def test_every_nova_recipe_has_a_reference() -> None:
    assert len(RECIPES) == 31
    assert {p.stem for p in FIXTURES.glob("*.yaml")} == set(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_manifests_are_hyperpods(case: str, tmp_path: Path) -> None:
    the_plan, _, errors, text = _render(case, tmp_path)
    assert errors == []
    release = the_plan.request.release
    assert release.startswith(f"{RUN_NAME}-") and release != RUN_NAME
    ours = _objects(text.replace(release, RUN_NAME))
    theirs = _objects((FIXTURES / f"{case}.yaml").read_text())
    assert sorted(ours) == sorted(theirs)
    for key, expected in theirs.items():
        assert ours[key] == expected, f"{key}:\n{_diff(ours[key], expected)}"


@pytest.mark.parametrize("case", ["options_sft", "options_ppo"])
def test_the_chart_passes_helm_lint_strict(case: str, tmp_path: Path) -> None:
    the_plan, _, _, _ = _render(case, tmp_path)
    chart = the_plan.request.chart_dir
    proc = subprocess.run(
        [require_tool("helm"), "lint", "--strict", chart],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
