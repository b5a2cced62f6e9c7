"""Every catalog recipe renders a chart whose values the chart's schema accepts; one recipe
per catalog folder also goes through `helm template` and the strict API/CRD schemas."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import jsonschema
import k8s_schemas
import pytest
import yaml

from hyperpod_launcher import backends
from hyperpod_launcher.catalog import dry_run as catalog_dry_run
from hyperpod_launcher.catalog import launch_scripts as gen_launch_scripts
from hyperpod_launcher.launch.compose import compose, plan
from tests.conftest import REPO, require_tool

RECIPES = REPO / "recipes_collection" / "recipes"
CATALOG = sorted(
    str(p.relative_to(RECIPES).with_suffix(""))
    for top in ("training", "fine-tuning")
    for p in (RECIPES / top).rglob("*.yaml")
    if p.parent.name != "nova"  # their own chart: test_k8s_nova.py
)
# One recipe per folder (and per accelerator) goes through helm as well.
SAMPLED = {
    next(r for r in CATALOG if str(Path(r).parent) == folder and ("trn1" in r) == trn)
    for folder in {str(Path(r).parent) for r in CATALOG}
    for trn in (False, True)
    if any(str(Path(r).parent) == folder and ("trn1" in r) == trn for r in CATALOG)
}


def instance_for(recipe: str) -> str:
    if "trn1" in recipe:
        return "trn1.32xlarge"
    return "p4d.24xlarge" if Path(recipe).name.startswith("p4_") else "p5.48xlarge"


# The job kinds: a Kubeflow PyTorchJob, and a HyperPodPyTorchJob (its chart and its kind).
KINDS = {
    "pytorchjob": ((), "pytorchjob", "PyTorchJob"),
    "hyperpod": (("cluster.use_hyperpod_pytorch_job=true",), "hyperpodpytorchjob",
                 "HyperPodPyTorchJob"),
}  # fmt: skip


def placeholders_for(recipe: str) -> tuple[str, ...]:
    """The data, model and experiment overrides the recipe's launch script passes."""
    composed, _ = compose((f"recipes={recipe}", "cluster=slurm"))
    values = {k: v for k, v in catalog_dry_run.PLACEHOLDERS.items() if k != "HF_ACCESS_TOKEN"}
    return tuple(gen_launch_scripts.placeholder_overrides(composed["recipes"], values))


@cache
def values_validator(chart: str) -> jsonschema.Draft7Validator:
    schema_path = REPO / "hyperpod_launcher/backends/k8s/charts" / chart / "values.schema.json"
    return jsonschema.Draft7Validator(json.loads(schema_path.read_text()))


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("recipe", CATALOG)
def test_catalog_recipe_renders_a_valid_chart(recipe: str, kind: str, tmp_path: Path) -> None:
    switch, chart, job_kind = KINDS[kind]
    base: tuple[str, ...] = (f"recipes={recipe}", f"instance_type={instance_for(recipe)}")
    base += placeholders_for(recipe)
    # The catalog's own k8s overrides: a claim mounted at /fsx, where the placeholders point.
    claims = [o for o in backends.entry("k8s").catalog_overrides if "volume_claims" in o]
    the_plan = plan((*base, "cluster=k8s", *switch, "container=example.com/train:1", *claims,
                     f"base_results_dir={tmp_path}"))  # fmt: skip
    values = yaml.safe_load(the_plan.files["k8s_template/values.yaml"][0])
    values_validator(chart).validate(values)
    assert values["nodes"] == the_plan.spec.nodes
    spec = the_plan.spec
    beside = dict(getattr(spec, "config_files", ()))  # e.g. DeepSpeed's ds_config.json
    assert values["jobFiles"] == {spec.recipe_file: spec.recipe_yaml, **beside}
    if recipe not in SAMPLED:
        return
    helm = require_tool("helm")
    objects, errors, _ = k8s_schemas.write_and_template(the_plan, helm)
    assert errors == []
    assert any(o["kind"] == job_kind for o in objects)
