"""The launcher checks values.yaml against the charts' own values.schema.json (one rulebook):
its reader knows every keyword the charts use and agrees with the jsonschema library on valid
and broken documents, and the cluster options' choices are the charts' enums."""

from __future__ import annotations

import copy
import json
import typing
from typing import Any, get_args

import jsonschema
import pytest

from hyperpod_launcher.backends.k8s import chart_schema, values
from hyperpod_launcher.backends.k8s.options import K8sOptions, K8sToleration
from hyperpod_launcher.launch.compose import plan

CHARTS = ("pytorchjob", "hyperpodpytorchjob")
BASE = (
    "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain",
    "cluster=k8s",
    "container=example.com/train:1",
    "instance_type=p5.48xlarge",
    "recipes.model.data.use_synthetic_data=true",
)
RICH = (
    "cluster.queue_name=team-a",
    "cluster.priority_class=high",
    "cluster.image_pull_secrets=[regcred]",
    "cluster.cpu_request=90",
    "cluster.memory_request=1000Gi",
    "cluster.shm_size=64Gi",
    "++cluster.custom_labels={team:ml}",
    "cluster.tolerations=[{key:dedicated,operator:Equal,value:ml,effect:NoSchedule}]",
    "cluster.volumes=[{volumeName:data,hostPath:/mnt/data,mountPath:/data}]",
    "cluster.persistent_volume_claims=[{claimName:fsx-claim,mountPath:/fsx}]",
    "++cluster.label_selector.preferred={zone:[a]}",
    "cluster.label_selector.weights=[50]",
)
LAUNCHES = {
    "pytorchjob": BASE,
    "pytorchjob, every kind of value": (*BASE, *RICH),
    "hyperpodpytorchjob": (*BASE, *RICH, "cluster.use_hyperpod_pytorch_job=true"),
}
# (path in values.yaml, a value the chart refuses)
BROKEN: list[tuple[tuple[Any, ...], Any]] = [
    (("imagePullPolicy",), "Sometimes"),
    (("queueName",), "Team_A"),
    (("kueuePriorityClass",), "p" * 64),
    (("serviceAccountName",), "Bad_Name"),
    (("shmSizeLimit",), "lots"),
    (("resources", "requests", "cpu"), "1.2.3"),
    (("labels", "team"), "a b"),
    (("labels", "team"), "x" * 64),
    (("imagePullSecrets", 0), "Bad_Secret"),
    (("tolerations", 0, "operator"), "Maybe"),
    (("volumes", 0, "hostPath"), "data"),
    (("volumes", 0, "name"), "Data"),
    (("claims", 0, "claimName"), "-claim"),
    (("nodeAffinity", "preferred", 0, "weight"), 150),
    (("nodes",), 0),
    (("job", "launchId"), "no spaces"),
]


def _documents() -> dict[str, tuple[str, dict[str, Any]]]:
    built = {}
    for label, overrides in LAUNCHES.items():
        chart = values.build(plan(overrides).spec)
        built[label] = (chart.chart, json.loads(json.dumps(chart.values)))
    return built


@pytest.fixture(scope="module")
def documents() -> dict[str, tuple[str, dict[str, Any]]]:
    return _documents()


def _library_says_valid(document: Any, chart: str) -> bool:
    return jsonschema.Draft7Validator(chart_schema.schema(chart)).is_valid(document)


def _keywords(node: Any, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            found.add(key)
            children = value.values() if key in ("properties", "definitions") else [value]
            for child in children:
                _keywords(child, found)
    elif isinstance(node, list):
        for item in node:
            _keywords(item, found)
    return found


@pytest.mark.parametrize("chart", CHARTS)
def test_the_reader_knows_every_keyword_the_chart_uses(chart: str) -> None:
    assert (chart_schema.CHARTS_DIR / chart / "values.schema.json").is_file()
    assert _keywords(chart_schema.schema(chart), set()) <= chart_schema.KEYWORDS


def test_what_the_launcher_writes_is_valid_for_both(documents) -> None:
    assert {chart for chart, _ in documents.values()} == set(CHARTS)
    for chart, document in documents.values():
        assert chart_schema.check(document, chart) is None
        assert _library_says_valid(document, chart)


@pytest.mark.parametrize(("path", "bad"), BROKEN, ids=[".".join(map(str, p)) for p, _ in BROKEN])
def test_a_broken_document_is_refused_by_both(documents, path: tuple[Any, ...], bad: Any) -> None:
    tried = 0
    for chart, document in documents.values():
        broken = copy.deepcopy(document)
        parent = broken
        try:
            for part in path[:-1]:
                parent = parent[part]
            parent[path[-1]]
        except (KeyError, IndexError):
            continue  # a launch without this value
        parent[path[-1]] = bad
        found = chart_schema.check(broken, chart)
        assert found is not None and found.path[: len(path)] == path, found
        assert not _library_says_valid(broken, chart)
        tried += 1
    assert tried


def _enum(chart: str, *path: str) -> set[str]:
    node: Any = chart_schema.schema(chart)
    for part in path:
        node = node[part]
    return set(node["enum"])


def _choices(schema: type, field: str) -> set[str]:
    hint = typing.get_type_hints(schema)[field]
    return {a for arg in (hint, *get_args(hint)) for a in get_args(arg) if isinstance(a, str)}


def test_the_options_choices_are_the_charts_enums() -> None:
    props = ("properties",)
    assert _choices(K8sOptions, "pullPolicy") == _enum("pytorchjob", *props, "imagePullPolicy")
    assert _choices(K8sOptions, "restartPolicy") == _enum("pytorchjob", *props, "restartPolicy")
    clean = _enum("pytorchjob", *props, "runPolicy", *props, "cleanPodPolicy") | _enum(
        "hyperpodpytorchjob", *props, "runPolicy", *props, "cleanPodPolicy"
    )
    assert _choices(K8sOptions, "cleanPodPolicy") == clean
    toleration = ("tolerations", "items", "properties")
    for field in ("operator", "effect"):
        assert _choices(K8sToleration, field) == _enum("pytorchjob", *props, *toleration, field)
