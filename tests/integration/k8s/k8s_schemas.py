"""Validate rendered manifests as the API server and the training operator would.

Core kinds: kubernetes-validate (the API's OpenAPI schemas, strict: unknown fields are
errors). PyTorchJob: jsonschema against the CRD's openAPIV3Schema (tests/k8s_crds/, from
training-operator v1.9.0), made strict the way the API server's strict field validation
is: additionalProperties false wherever the schema lists properties and does not say
x-kubernetes-preserve-unknown-fields; x-kubernetes-int-or-string and nullable translated.
HyperPodPyTorchJob: jsonschema against our own strict schema of the job
(k8s_crds/sagemaker.amazonaws.com_hyperpodpytorchjobs.schema.json, written from public
sources: no CRD schema is published).
Each pod template is also checked as a core PodTemplate, and the job's metadata as core
ObjectMeta (the CRD leaves both top-level metadata and its format to the API server).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from hyperpod_launcher.spec.job import launch_folder

HYPERPOD_API = "sagemaker.amazonaws.com/v1"
CRD_DIR = Path(__file__).resolve().parents[2] / "k8s_crds"
KUBE_VERSION = "1.30.0"
INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]


def strict_schema(node: Any) -> Any:
    """An OpenAPI v3 (structural) schema as a strict JSON Schema."""
    if isinstance(node, list):
        return [strict_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: strict_schema(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = INT_OR_STRING
    if node.get("nullable"):
        out.pop("nullable")
        if "type" in out:
            out["type"] = [out["type"], "null"]
    if (
        node.get("type") == "object"
        and "properties" in node
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


@cache
def crd_validator() -> Any:
    import jsonschema

    crd = yaml.safe_load((CRD_DIR / "kubeflow.org_pytorchjobs.yaml").read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    schema = strict_schema(version["schema"]["openAPIV3Schema"])
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@cache
def hyperpod_validator() -> Any:
    import json

    import jsonschema

    path = CRD_DIR / "sagemaker.amazonaws.com_hyperpodpytorchjobs.schema.json"
    schema = json.loads(path.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def core_errors(obj: dict[str, Any]) -> list[str]:
    import kubernetes_validate

    try:
        kubernetes_validate.validate(obj, KUBE_VERSION, strict=True)
    except kubernetes_validate.ValidationError as err:
        return [f"{obj.get('kind')} {obj.get('metadata', {}).get('name')}: {err.message}"]
    return []


def pytorchjob_errors(obj: dict[str, Any]) -> list[str]:
    name = obj["metadata"]["name"]
    errors = [
        f"PyTorchJob {name}: {'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in crd_validator().iter_errors(obj)
    ]
    probe = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj["metadata"]}
    errors += core_errors(probe)
    for kind, replica in obj["spec"]["pytorchReplicaSpecs"].items():
        template = {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": f"{name}-{kind.lower()}"},
            "template": replica["template"],
        }
        errors += core_errors(template)
    return errors


def _template_errors(name: str, template: dict[str, Any]) -> list[str]:
    probe = {
        "apiVersion": "v1",
        "kind": "PodTemplate",
        "metadata": {"name": name},
        "template": template,
    }
    return core_errors(probe)


def hyperpodpytorchjob_errors(obj: dict[str, Any]) -> list[str]:
    name = obj["metadata"]["name"]
    errors = [
        f"HyperPodPyTorchJob {name}: {'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in hyperpod_validator().iter_errors(obj)
    ]
    errors += core_errors({"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj["metadata"]})
    for replica in obj["spec"]["replicaSpecs"]:
        errors += _template_errors(f"{name}-{replica['name']}", replica["template"])
    return errors


def manifest_errors(text: str) -> tuple[list[dict[str, Any]], list[str]]:
    """(objects, errors) for a `helm template` output."""
    objects = [d for d in yaml.safe_load_all(text) if d]
    errors: list[str] = []
    for obj in objects:
        if obj.get("apiVersion") == "kubeflow.org/v1" and obj.get("kind") == "PyTorchJob":
            errors += pytorchjob_errors(obj)
        elif obj.get("apiVersion") == HYPERPOD_API:
            errors += hyperpodpytorchjob_errors(obj)
        else:
            errors += core_errors(obj)
    return objects, errors


def write_and_template(the_plan: Any, helm: str) -> tuple[list[dict[str, Any]], list[str], str]:
    """Write a launch plan's files into its launch folder, run `helm template` on the chart with
    the launcher's own release/chart/namespace arguments, and check what it renders:
    (objects, schema errors, manifests text)."""
    import subprocess

    for relpath, (text, mode) in the_plan.files.items():
        path = Path(launch_folder(the_plan.spec.job_dir, the_plan.spec.launch_id)) / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(mode)
    argv = the_plan.request.submit_argv
    proc = subprocess.run(
        [helm, "template", *argv[2:], "--api-versions", "kubeflow.org/v1",
         "--api-versions", HYPERPOD_API],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, f"helm template failed:\n{proc.stderr}"
    objects, errors = manifest_errors(proc.stdout)
    return objects, errors, proc.stdout


def chart_case(
    cache: dict[str, dict[str, Any]],
    cases: dict[str, tuple[str, ...]],
    case: str,
    tmp_path_factory: Any,
    helm: str,
) -> dict[str, Any]:
    """Render a case's launch into a job folder and `helm template` it, once per case: its
    plan, chart folder, rendered objects, schema errors and manifests text."""
    if case not in cache:
        from hyperpod_launcher.launch.compose import plan

        base = tmp_path_factory.mktemp(case)
        the_plan = plan((*cases[case], f"base_results_dir={base}"), launch_id="launch-1")
        objects, errors, text = write_and_template(the_plan, helm)
        cache[case] = {
            "case": case,
            "plan": the_plan,
            "chart_dir": Path(the_plan.request.submit_argv[3]),
            "objects": objects,
            "errors": errors,
            "text": text,
        }
    return cache[case]
