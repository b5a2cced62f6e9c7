"""The catalog-wide dry run: every recipe x every registered backend, in one process.

Each recipe is composed once and rendered by every backend in hyperpod_launcher/backends
(new backends are covered as soon as they are registered). Every artifact renders; every shell
script passes shellcheck (one call); every Helm chart passes `helm lint --strict` (one call)
and `helm template`; every Python file (SageMaker's launch.py) compiles; no secret leaks.
Timing is measured by bench/catalog_render.py, never asserted here.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from hyperpod_launcher import backends
from hyperpod_launcher.catalog import dry_run as catalog_dry_run
from hyperpod_launcher.catalog import recipes as catalog
from hyperpod_launcher.catalog.dry_run import Outcome
from tests.conftest import require_tool, shellcheck

TOKEN = catalog_dry_run.PLACEHOLDERS["HF_ACCESS_TOKEN"]


@pytest.fixture(scope="module")
def outcomes() -> list[Outcome]:
    return catalog_dry_run.run()


@pytest.fixture(scope="module")
def written(outcomes: list[Outcome], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every rendered artifact on disk: <root>/<backend>/<recipe>/<relpath>."""
    root = tmp_path_factory.mktemp("catalog")
    for o in outcomes:
        if o.request is None:
            continue
        for rel, file in o.request.files.items():
            path = root / o.backend / o.recipe / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(file.text)
    return root


def test_every_recipe_meets_every_registered_backend(outcomes: list[Outcome]) -> None:
    assert {o.backend for o in outcomes} == set(backends.names())
    assert {"slurm", "local"} <= set(backends.names())
    pairs = {(o.recipe, o.backend) for o in outcomes}
    assert pairs == {(r, b) for r in catalog.recipe_names() for b in backends.names()}


def test_with_the_launch_scripts_values_no_recipe_lacks_a_required_value(
    outcomes: list[Outcome],
) -> None:
    """The launch scripts take every value a recipe's training code needs at start
    (required.py): with them set, no launch of the catalog is refused for a missing one."""
    checked = [o for o in outcomes if o.spec is not None and o.spec.mode == "recipe"]
    assert {o.spec.backend for o in checked} == set(catalog_dry_run.backend_names())
    lacking_image = {
        (o.recipe, o.backend)
        for o in checked
        if o.spec.image is None and o.spec.resume is not None and o.spec.resume.stack == "nemo"
    }
    missing = [(o.recipe, o.backend, o.spec.missing) for o in checked if o.spec.missing]
    # A recipe whose code is in its container lacks only the image where the backend has none.
    assert [m for m in missing if (m[0], m[1]) not in lacking_image] == []
    assert all(len(m[2]) == 1 and "container is not set" in m[2][0] for m in missing)
    # Without MODEL_CONFIG and RESUME_FROM_CHECKPOINT the Trainium recipes lack them:
    cpt = "training/llama/hf_llama2_70b_seq4k_trn1x32_continued_pretrain"
    pretrain = "training/llama/hf_llama3_8b_seq8k_trn1x4_pretrain"
    fewer = {
        k: v
        for k, v in catalog_dry_run.PLACEHOLDERS.items()
        if k not in ("MODEL_CONFIG", "RESUME_FROM_CHECKPOINT")
    }
    lacking = {
        o.recipe: [line.split(":")[0] for line in o.spec.missing]
        for o in catalog_dry_run.run([cpt, pretrain], ["slurm"], fewer)
        if o.spec is not None
    }
    assert lacking == {
        cpt: ["recipes.model.model_config=null", "recipes.exp_manager.resume_from_checkpoint=null"],
        pretrain: ["recipes.model.model_config=null"],
    }


def test_every_artifact_renders_where_the_backend_can_run_the_recipe(
    outcomes: list[Outcome],
) -> None:
    for o in outcomes:
        if o.refused is not None and "/nova/" in o.recipe:  # Nova runs only on k8s
            assert o.backend != "k8s" and "which runs only on cluster=k8s" in o.refused
            continue
        if o.refused is not None:
            # The other refusal by design: this machine is a single node.
            assert o.backend == "local", (o.recipe, o.backend, o.refused)
            assert "cluster=local runs on this one machine" in o.refused, o.refused
            continue
        assert o.request is not None and o.spec is not None
        assert o.request.files and o.request.submit_argv, (o.recipe, o.backend)
        assert all(f.text.strip() for f in o.request.files.values()), (o.recipe, o.backend)
    single_node = {
        o.recipe for o in outcomes if o.spec is not None and o.spec.nodes == 1 and not o.spec.nova
    }
    rendered_locally = {o.recipe for o in outcomes if o.backend == "local" and o.request}
    assert single_node <= rendered_locally


def test_recipes_bring_their_ds_config_and_placeholders(outcomes: list[Outcome]) -> None:
    for o in outcomes:
        if o.spec is None or o.spec.mode != "recipe":
            continue
        assert (o.spec.instance_type or "").startswith(("p4d", "p5", "trn1")), o.recipe
        is_ds = "\n  strategy: deepspeed\n" in (o.spec.recipe_yaml or "")  # ZeRO recipes
        assert [name for name, _ in o.spec.config_files] == (["ds_config.json"] if is_ds else [])
        if "hf_access_token" in (o.spec.recipe_yaml or ""):
            assert "HF_TOKEN" in o.spec.secret_env, o.recipe


def test_shell_scripts_pass_shellcheck_in_one_call(outcomes: list[Outcome], written: Path) -> None:
    scripts = sorted(written.rglob("*.sh"))
    slurm = [p for p in scripts if p.relative_to(written).parts[0] == "slurm"]
    rendered = {o.recipe for o in outcomes if o.backend == "slurm" and o.request}
    assert len(slurm) >= 2 * len(rendered)  # submission + train script each
    # identical texts (the per-node script recurs) are checked once
    unique = {p.read_text(): p for p in scripts}
    shellcheck(*unique.values())


def test_helm_charts_lint_and_template(outcomes: list[Outcome], written: Path) -> None:
    charts = sorted(p.parent for p in written.rglob("k8s_template/Chart.yaml"))
    if "k8s" not in backends.names():
        assert not charts
        pytest.skip("no Kubernetes backend registered")
    assert len(charts) == len(catalog.recipe_names())
    helm = require_tool("helm")
    lint = subprocess.run(
        [helm, "lint", "--strict", *map(str, charts)], capture_output=True, text=True, check=False
    )
    assert lint.returncode == 0, lint.stdout[-3000:] + lint.stderr[-3000:]

    def template(chart: Path) -> tuple[Path, subprocess.CompletedProcess[str]]:
        argv = [helm, "template", "catalog", str(chart), "--api-versions", "kubeflow.org/v1"]
        return chart, subprocess.run(argv, capture_output=True, text=True, check=False)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for chart, proc in pool.map(template, charts):
            assert proc.returncode == 0, f"{chart}: {proc.stderr}"
            assert "kind: PyTorchJob" in proc.stdout, chart


def test_python_artifacts_compile(outcomes: list[Outcome]) -> None:
    found = 0
    for o in outcomes:
        for rel, file in (o.request.files if o.request else {}).items():
            if rel.endswith(".py"):
                compile(file.text, f"{o.backend}/{o.recipe}/{rel}", "exec")
                found += 1
    if "sm_jobs" in backends.names():  # launch.py per SageMaker job
        assert found >= len([o for o in outcomes if o.backend == "sm_jobs" and o.request])


def test_no_artifact_holds_the_token(outcomes: list[Outcome]) -> None:
    for o in outcomes:
        for rel, file in (o.request.files if o.request else {}).items():
            assert TOKEN not in file.text, (o.recipe, o.backend, rel)
        if o.spec is not None:
            assert TOKEN not in (o.spec.recipe_yaml or ""), o.recipe
            assert all(TOKEN not in text for _, text in o.spec.config_files)


def test_placeholders_applied_after_composition_equal_overrides() -> None:
    """The dry run's keyed placeholders are what the launch scripts' overrides compose to."""
    from hyperpod_launcher.catalog import launch_scripts as gen_launch_scripts

    values = {k: v for k, v in catalog_dry_run.PLACEHOLDERS.items() if k != "HF_ACCESS_TOKEN"}
    names = [n for n in catalog.recipe_names() if not catalog.is_global(n)]
    with catalog.Composer() as composer:
        keyed = dict(
            composer.many(
                names,
                keyed=lambda _, r: gen_launch_scripts.placeholder_overrides(r, values),
            )
        )
        per_recipe = {  # a recipe's keys do not depend on the placeholder values
            n: gen_launch_scripts.placeholder_overrides(cfg["recipes"], values)
            for n, cfg in keyed.items()
        }
        assert dict(composer.many(names, (), per_recipe)) == keyed


def test_backend_sections_equal_composing_each_cluster() -> None:
    from omegaconf import OmegaConf

    with catalog.Composer() as composer:
        sections = catalog_dry_run._cluster_sections(composer, backends.names())
        for name in backends.names():
            extra = backends.entry(name).catalog_overrides
            cfg = composer.raw(["~recipes", f"cluster={name}", *extra])
            assert sections[name] == OmegaConf.to_container(cfg, resolve=True), name
