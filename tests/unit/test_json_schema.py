"""`hyperpod-launch schema`: JSON Schema (draft 2020-12) that every shipped config file and
recipe passes, and that known-bad documents fail (checked with jsonschema)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from omegaconf import OmegaConf

from hyperpod_launcher.catalog import recipes as catalog
from hyperpod_launcher.cli import schema_command
from hyperpod_launcher.config import json_schema
from hyperpod_launcher.spec import recipe_checks
from hyperpod_launcher.util import resources
from tests.conftest import run_launcher


@pytest.fixture(scope="module")
def schemas(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("schemas")
    proc = run_launcher("schema", "--all", str(out))
    assert proc.returncode == 0, proc.stderr
    found = {
        str(p.relative_to(out).with_suffix("")): json.loads(p.read_text())
        for p in out.rglob("*.json")
    }
    assert set(found) == set(schema_command.all_names())
    for schema in found.values():
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == json_schema.DRAFT
    return found


def _errors(document: Any, schema: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    return [e.message for e in validator.iter_errors(document)]


def test_config_and_every_cluster_file_pass(schemas: dict[str, dict[str, Any]]) -> None:
    root = resources.config_dir()
    assert _errors(yaml.safe_load((root / "config.yaml").read_text()), schemas["config"]) == []
    for path in sorted((root / "cluster").glob("*.yaml")):
        document = yaml.safe_load(path.read_text()) or {}
        assert _errors(document, schemas[f"cluster/{path.stem}"]) == [], path


def test_every_recipe_file_passes_its_stack(schemas: dict[str, dict[str, Any]]) -> None:
    with catalog.Composer() as composer:
        composed = dict(composer.many(catalog.recipe_names(), ("cluster=slurm",)))
    for name, cfg in composed.items():
        # OmegaConf's loader, as Hydra reads it (and as YAML 1.2 reads 1e-6: a number)
        loaded = OmegaConf.load(resources.recipes_dir() / f"{name}.yaml")
        document = OmegaConf.to_container(loaded, resolve=False)
        recipe = cfg.get("recipes")
        stack = recipe_checks.stack_of(recipe) if isinstance(recipe, dict) else None
        schema = schemas[f"stack/{stack}"] if stack else schemas["config"]
        assert _errors(document, schema) == [], name


@pytest.mark.parametrize(
    ("name", "document", "fragment"),
    [
        ("cluster/slurm", {"partiton": "gpu"}, "'partiton' was unexpected"),
        ("cluster/slurm", {"exclusive": "yes"}, "'yes'"),
        ("config", {"dry_run": "maybe"}, "'maybe'"),
        ("stack/adapter", {"model": {"train_batch_size": 0}}, "0"),
        ("stack/adapter", {"model": {"optim": {"lr": "abc"}}}, "'abc'"),
        ("stack/adapter", {"trainer": {"max_steps": -3}}, "-3"),
        ("stack/neuron", {"precision": {"type": "bf16"}}, "'bf16'"),
    ],
)
def test_known_bad_documents_fail(
    schemas: dict[str, dict[str, Any]], name: str, document: dict[str, Any], fragment: str
) -> None:
    errors = _errors(document, schemas[name])
    assert errors and any(fragment in e for e in errors), errors


def test_an_interpolation_or_mandatory_marker_may_stand_for_a_value(
    schemas: dict[str, dict[str, Any]],
) -> None:
    document = {"trainer": {"num_nodes": "???", "max_steps": "${..model.steps}"}}
    assert _errors(document, schemas["stack/adapter"]) == []


def test_schema_prints_one_document_and_names_unknown_ones(tmp_path: Path) -> None:
    proc = run_launcher("schema", "cluster/k8s")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["properties"]["rdzv_port"]["anyOf"][0]["type"] == "integer"
    proc = run_launcher("schema", "stack/adpter")
    assert proc.returncode == 2
    assert proc.stderr.strip() == proc.stderr.strip().splitlines()[0]
    assert "did you mean 'stack/adapter'" in proc.stderr


def test_the_former_recipe_kind_names_still_work() -> None:
    """`schema recipe-kind/<stack>` was the name of a stack's schema before `stack/<stack>`."""
    old = run_launcher("schema", "recipe-kind/adapter")
    new = run_launcher("schema", "stack/adapter")
    assert old.returncode == 0, old.stderr
    assert json.loads(old.stdout) == json.loads(new.stdout)
