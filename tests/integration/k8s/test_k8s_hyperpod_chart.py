"""The HyperPodPyTorchJob chart, with the real Helm 4, our strict schema of the job, and AWS's
own template for the job (the hyp CLI's, from the hyperpod-pytorch-job-template package).

For each case: `helm lint --strict`, `helm template`, `helm install --dry-run=client` with the
launcher's argv, manifests validated strictly (k8s_schemas). Then what HyperPod reads:
hyperpodrun and its flags, NNODES/NPROC_PER_NODE, runPolicy, elasticPolicy, Kueue labels,
topology annotations, node-health affinity, and tokens by Secret reference only.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import jsonschema
import k8s_schemas
import pytest
import yaml

from hyperpod_launcher.launch.compose import plan
from tests.conftest import REPO, require_tool, run_launcher, shellcheck

LLAMA = "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain"
IMAGE = "container=123456789012.dkr.ecr.us-west-2.amazonaws.com/train:1.0"
HYPERPOD = "cluster.use_hyperpod_pytorch_job=true"
HF_TOKEN = "hf_NotARealToken0123456789"
QUEUE, PRIORITY = "hyperpod-ns-team-a-localqueue", "training-priority"
TOPOLOGY = "topology.k8s.aws/network-node-layer-3"

CASES: dict[str, tuple[str, ...]] = {
    "llama_p5_defaults": (LLAMA, "cluster=k8s", HYPERPOD, "instance_type=p5.48xlarge", IMAGE),
    "llama_p5_governed_elastic": (
        LLAMA,
        "cluster=k8s",
        HYPERPOD,
        "instance_type=ml.p5.48xlarge",
        IMAGE,
        "cluster.namespace=hyperpod-ns-team-a",
        f"cluster.queue_name={QUEUE}",
        f"cluster.priority_class={PRIORITY}",
        "cluster.priority_class_name=system-node-critical",
        f"cluster.preferred_topology={TOPOLOGY}",
        "cluster.deep_health_check_passed_nodes_only=true",
        "cluster.elastic_policy={min_nodes:16,max_nodes:48,replica_increment_step:16,"
        "graceful_shutdown_timeout:600,scaling_timeout:120,faulty_timeout:60}",
        "max_restarts=20",
        "cluster.numRestartBeforeFullJobRestart=3",
        "cluster.evalPeriodSeconds=21600",
        "cluster.maxFullJobRestarts=2",
        "cluster.cleanPodPolicy=None",
        "cluster.ttlSecondsAfterFinished=3600",
        "cluster.logMonitoringConfiguration=[{name:FirstStep,logPattern:'.*step [0-9]+ .*',"
        "expectedStartCutOffInSeconds:900},{name:LowTokens,logPattern:'.*tokens/s: ([0-9.]+).*',"
        "metricThreshold:1000,operator:lt,metricEvaluationDataPoints:10},"
        "{name:Oom,logPattern:'.*CUDA out of memory.*',faultOnMatch:true}]",
        "cluster.pre_script=['echo pre']",
        "cluster.post_script=['echo post']",
        f"recipes.model.hf_access_token={HF_TOKEN}",
    ),
    "custom_cpu_single_pod_required_topology": (
        "cluster=k8s",
        HYPERPOD,
        "container=python:3.11-slim",
        "training_cfg.run.name=AllReduce_Smoke",
        "training_cfg.script_args=[{--steps:5}]",
        "cluster.required_topology=topology.k8s.aws/ultraserver-id",
        "cluster.schedulable_nodes_only=false",
        "cluster.elastic_policy={min_nodes:1,max_nodes:4,replica_discrete_values:[1,2,4]}",
    ),
}


@pytest.fixture(scope="module")
def helm() -> str:
    return require_tool("helm")


_RENDERED: dict[str, dict[str, Any]] = {}


def render_case(case: str, tmp_path_factory: pytest.TempPathFactory, helm: str) -> dict[str, Any]:
    return k8s_schemas.chart_case(_RENDERED, CASES, case, tmp_path_factory, helm)


@pytest.fixture(scope="module", params=sorted(CASES))
def chart(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, helm: str):
    return render_case(request.param, tmp_path_factory, helm)


@pytest.fixture(scope="module")
def governed(tmp_path_factory: pytest.TempPathFactory, helm: str) -> dict[str, Any]:
    return render_case("llama_p5_governed_elastic", tmp_path_factory, helm)


def job_of(chart: dict[str, Any]) -> dict[str, Any]:
    (job,) = [o for o in chart["objects"] if o["kind"] == "HyperPodPyTorchJob"]
    return job


def pod_of(chart: dict[str, Any]) -> dict[str, Any]:
    (replica,) = job_of(chart)["spec"]["replicaSpecs"]
    return replica["template"]


def main_container(chart: dict[str, Any]) -> dict[str, Any]:
    (main,) = pod_of(chart)["spec"]["containers"]
    return main


def env_of(chart: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in main_container(chart)["env"]}


def scripts_of(chart: dict[str, Any]) -> dict[str, str]:
    name = job_of(chart)["metadata"]["name"]
    (scripts,) = [o for o in chart["objects"] if o["metadata"]["name"] == f"{name}-scripts"]
    return scripts["data"]


def run(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([helm, *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"helm {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_helm_lint_strict(chart: dict[str, Any], helm: str) -> None:
    proc = run(helm, "lint", "--strict", str(chart["chart_dir"]))
    assert "0 chart(s) failed" in proc.stdout


def test_install_dry_run_client_with_the_launchers_argv(chart: dict[str, Any], helm: str) -> None:
    argv = chart["plan"].request.submit_argv
    proc = run(helm, *argv[1:], "--dry-run=client")
    assert "STATUS: pending-install" in proc.stdout


def test_manifests_are_valid_for_the_api_server_and_our_job_schema(chart: dict[str, Any]) -> None:
    assert chart["errors"] == []
    kinds = sorted(o["kind"] for o in chart["objects"])
    recipe_mode = chart["plan"].spec.mode == "recipe"
    assert kinds == sorted(["HyperPodPyTorchJob", "ConfigMap"] + ["ConfigMap"] * recipe_mode)


def test_the_job_schema_is_strict() -> None:
    """A field the sources do not list, or a wrong enum, fails our schema."""
    validator = k8s_schemas.hyperpod_validator()
    job = {
        "apiVersion": "sagemaker.amazonaws.com/v1",
        "kind": "HyperPodPyTorchJob",
        "metadata": {"name": "x"},
        "spec": {"replicaSpecs": [{"name": "pod", "replicas": 1, "template": {}}]},
    }
    assert list(validator.iter_errors(job)) == []
    for bad in (
        {"pytorchReplicaSpecs": {}},
        {"runPolicy": {"cleanPodPolicy": "Running"}},
        {"runPolicy": {"restartPolicy": {"maxFullJobRestarts": 1}}},
        {"elasticPolicy": {"minReplicas": 1, "maxReplicas": 2, "replicaIncrementStep": 1,
                           "replicaDiscreteValues": [1, 2]}},
    ):  # fmt: skip
        assert list(validator.iter_errors({**job, "spec": {**job["spec"], **bad}})), bad


def test_values_follow_the_charts_schema(chart: dict[str, Any]) -> None:
    schema = json.loads((chart["chart_dir"] / "values.schema.json").read_text())
    values = yaml.safe_load((chart["chart_dir"] / "values.yaml").read_text())
    jsonschema.Draft7Validator(schema).validate(values)


def test_one_replica_group_runs_hyperpodrun(chart: dict[str, Any]) -> None:
    spec = chart["plan"].spec
    job = job_of(chart)
    assert job["apiVersion"] == "sagemaker.amazonaws.com/v1"
    assert job["spec"]["nprocPerNode"] == str(spec.procs_per_node)
    (replica,) = job["spec"]["replicaSpecs"]
    assert replica["name"] == "pod" and replica["replicas"] == spec.nodes
    main = main_container(chart)
    assert main["name"] == "pytorch-job-container"
    assert main["ports"] == [{"name": "hyperpod-agent", "containerPort": 8080}]
    env = env_of(chart)
    assert env["NNODES"] == str(spec.nodes)
    assert env["NPROC_PER_NODE"] == str(spec.procs_per_node)
    assert "MASTER_ADDR" not in env and "HPL_RDZV_ID" not in env
    script = scripts_of(chart)["train_script.sh"]
    # hyperpodrun starts the workers (behind the run's watcher), never torchrun
    assert '\nexec ${watch[@]+"${watch[@]}"} hyperpodrun ' in script
    assert not [line for line in script.splitlines() if line.lstrip().startswith("torchrun ")]
    for flag in (
        "--tee=3",
        "--log_dir=/tmp/hyperpod",
        '--nnodes="$NNODES"',
        '--nproc-per-node="$NPROC_PER_NODE"',
        '--server-host="$HPL_AGENT_HOST"',
        '--server-port="$HPL_AGENT_PORT"',
    ):
        assert f"\n  {flag}\n" in script
    assert "--rdzv" not in script
    assert env["HPL_AGENT_HOST"] == "0.0.0.0" and env["HPL_AGENT_PORT"] == "8080"


def test_node_health_affinity_is_on_by_default(chart: dict[str, Any]) -> None:
    opts = chart["plan"].spec.opts
    affinity = pod_of(chart)["spec"].get("affinity", {}).get("nodeAffinity", {})
    terms = affinity.get("requiredDuringSchedulingIgnoredDuringExecution", {})
    expressions = {
        e["key"]: e["values"]
        for term in terms.get("nodeSelectorTerms", [])
        for e in term["matchExpressions"]
    }
    health = expressions.get("sagemaker.amazonaws.com/node-health-status")
    assert health == (["Schedulable"] if opts.schedulable_nodes_only else None)
    deep = expressions.get("sagemaker.amazonaws.com/deep-health-check-status")
    assert deep == (["Passed"] if opts.deep_health_check_passed_nodes_only else None)


def test_governed_elastic_job_fields(governed: dict[str, Any]) -> None:
    job = job_of(governed)
    labels = job["metadata"]["labels"]
    assert labels["kueue.x-k8s.io/queue-name"] == QUEUE
    assert labels["kueue.x-k8s.io/priority-class"] == PRIORITY
    pod = pod_of(governed)
    assert pod["metadata"]["labels"]["kueue.x-k8s.io/priority-class"] == PRIORITY
    # The pods' Kubernetes PriorityClass stays its own setting.
    assert pod["spec"]["priorityClassName"] == "system-node-critical"
    annotation = {"kueue.x-k8s.io/podset-preferred-topology": TOPOLOGY}
    assert pod["metadata"]["annotations"] == annotation
    assert job["metadata"]["annotations"] == annotation
    assert job["spec"]["runPolicy"] == {
        "cleanPodPolicy": "None",
        "jobMaxRetryCount": 20,
        "restartPolicy": {
            "numRestartBeforeFullJobRestart": 3,
            "evalPeriodSeconds": 21600,
            "maxFullJobRestarts": 2,
        },
        "logMonitoringConfiguration": [
            {"name": "FirstStep", "logPattern": ".*step [0-9]+ .*",
             "expectedStartCutOffInSeconds": 900},
            {"name": "LowTokens", "logPattern": ".*tokens/s: ([0-9.]+).*",
             "metricThreshold": 1000, "operator": "lt", "metricEvaluationDataPoints": 10},
            {"name": "Oom", "logPattern": ".*CUDA out of memory.*", "faultOnMatch": True},
        ],
        "ttlSecondsAfterFinished": 3600,
        "activeDeadlineSeconds": 6 * 86400,
    }  # fmt: skip
    assert job["spec"]["elasticPolicy"] == {
        "minReplicas": 16,
        "maxReplicas": 48,
        "replicaIncrementStep": 16,
        "gracefulShutdownTimeoutInSeconds": 600,
        "scalingTimeoutInSeconds": 120,
        "faultyScaleDownTimeoutInSeconds": 60,
    }
    assert job["spec"]["replicaSpecs"][0]["maxReplicas"] == 48


def test_tokens_reach_pods_only_by_secret_reference(governed: dict[str, Any]) -> None:
    everything = governed["text"] + "".join(t for t, _ in governed["plan"].files.values())
    assert HF_TOKEN not in everything
    name = job_of(governed)["metadata"]["name"]
    assert env_of(governed)["HF_TOKEN"] == {
        "secretKeyRef": {"name": f"{name}-secrets", "key": "HF_TOKEN"}
    }
    (checkout,) = pod_of(governed)["spec"]["initContainers"]
    token = next(e for e in checkout["env"] if e["name"] == "HPL_GIT_TOKEN")
    assert token["valueFrom"]["secretKeyRef"]["name"] == f"{name}-secrets"
    assert not any(e["name"] == "HPL_GIT_TOKEN" for e in main_container(governed)["env"])


def test_scripts_pass_shellcheck(governed: dict[str, Any], tmp_path: Path) -> None:
    paths = []
    for file, text in scripts_of(governed).items():
        if file.endswith(".sh") and file not in ("pre_script.sh", "post_script.sh"):
            paths.append(tmp_path / file)
            paths[-1].write_text(text)
    spec = governed["plan"].spec
    paths.append(Path(spec.launch_dir) / f"{spec.name}_submission.sh")
    shellcheck(*paths)


# --- AWS's own template -----------------------------------------------------------------------


def aws_template() -> str:
    """The hyp CLI's Jinja template (v1_1) of hyperpod-pytorch-job-template. Loaded from its
    file: the package's models import the hyp CLI itself, which the template does not need."""
    root = resources.files("hyperpod_pytorch_job_template")
    source = importlib.util.spec_from_file_location("hpjt_v1_1", str(root / "v1_1" / "template.py"))
    assert source is not None and source.loader is not None
    module = importlib.util.module_from_spec(source)
    source.loader.exec_module(module)
    return module.TEMPLATE_CONTENT


def leaves(node: Any, path: str = "") -> dict[str, Any]:
    """Field path -> value; lists of named items are keyed by name (env, containers)."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            out.update(leaves(value, f"{path}.{key}" if path else str(key)))
        return out
    if isinstance(node, list) and node and all(isinstance(i, dict) and "name" in i for i in node):
        out = {}
        for item in node:
            out.update(leaves({k: v for k, v in item.items() if k != "name"},
                              f"{path}[{item['name']}]"))  # fmt: skip
            out[f"{path}[{item['name']}].name"] = item["name"]
        return out
    return {path: str(node) if isinstance(node, (int, float)) and node is not True else node}


# Where our job differs from the hyp CLI's on purpose, with the reason.
DIFFERENCES = {
    # nodeSelector -> required node affinity: EKS labels nodes with the EC2 name, HyperPod with
    # the ml. name; one In expression accepts both (a nodeSelector takes one value).
    "spec.replicaSpecs[pod].template.spec.nodeSelector.node.kubernetes.io/instance-type",
    "spec.replicaSpecs[pod].template.spec.nodeSelector.sagemaker.amazonaws.com/"
    "deep-health-check-status",
}


def test_every_field_of_aws_template_is_in_ours_with_the_same_value(
    governed: dict[str, Any],
) -> None:
    """Render the hyp CLI's template for the same job and compare field by field."""
    spec = governed["plan"].spec
    job = job_of(governed)
    main = main_container(governed)
    resources_ = main["resources"]
    inputs = {
        "job_name": job["metadata"]["name"],
        "namespace": spec.opts.namespace,
        "queue_name": QUEUE,
        "priority": PRIORITY,
        "preferred_topology": TOPOLOGY,
        "tasks_per_node": spec.procs_per_node,
        "replica_count": spec.nodes,
        "image": spec.image,
        "pull_policy": main["imagePullPolicy"],
        "command": main["command"],
        "environment": {"NNODES": spec.nodes, "NPROC_PER_NODE": spec.procs_per_node},
        "accelerators": int(resources_["requests"]["nvidia.com/gpu"]),
        "accelerators_limit": int(resources_["limits"]["nvidia.com/gpu"]),
        "efa": int(resources_["requests"]["vpc.amazonaws.com/efa"]),
        "efa_limit": int(resources_["limits"]["vpc.amazonaws.com/efa"]),
        "instance_type": f"ml.{spec.instance_type}",
        "deep_health_check_passed_nodes_only": True,
        "max_retry": job["spec"]["runPolicy"]["jobMaxRetryCount"],
    }
    theirs = yaml.safe_load(jinja2.Template(aws_template()).render(**inputs))
    assert theirs["kind"] == "HyperPodPyTorchJob"
    ours = leaves(job)
    compared = 0
    for path, value in leaves(theirs).items():
        if path in DIFFERENCES:
            continue
        assert path in ours, f"the hyp CLI sets {path}={value!r}; our job has no such field"
        assert ours[path] == value, f"{path}: ours {ours[path]!r}, the hyp CLI's {value!r}"
        compared += 1
    assert compared >= 25
    # The differences are still honoured, as node affinity.
    terms = pod_of(governed)["spec"]["affinity"]["nodeAffinity"]
    (term,) = terms["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    expressions = {e["key"]: e["values"] for e in term["matchExpressions"]}
    assert inputs["instance_type"] in expressions["node.kubernetes.io/instance-type"]
    assert expressions["sagemaker.amazonaws.com/deep-health-check-status"] == ["Passed"]


# --- bad values: one line each ---------------------------------------------------------------

BAD = {
    "elastic min above nodes": (
        (LLAMA, "cluster.elastic_policy={min_nodes:17,max_nodes:32}"),
        "cluster.elastic_policy: min_nodes 17 <= nodes 16 <= max_nodes 32 must hold",
    ),
    "elastic without max": (
        (LLAMA, "cluster.elastic_policy={min_nodes:8}"),
        "cluster.elastic_policy: min_nodes and max_nodes are required",
    ),
    "elastic size breaks the layout": (
        (LLAMA, "cluster.elastic_policy={min_nodes:8,max_nodes:24,replica_increment_step:8}"),
        "cluster.elastic_policy: the recipe does not fit 2 allowed size(s) (8, 24 nodes); at 8 "
        "nodes: recipes.model.shard_degree=64",
    ),
    "zero elastic step": (
        (LLAMA, "cluster.elastic_policy={min_nodes:16,max_nodes:32,replica_increment_step:0}"),
        "cluster.elastic_policy.replica_increment_step: expected int >= 1 or null, got 0",
    ),
    "elastic step and values": (
        (
            LLAMA,
            "cluster.elastic_policy={min_nodes:16,max_nodes:32,replica_increment_step:16,"
            "replica_discrete_values:[16,32]}",
        ),
        "replica_increment_step and replica_discrete_values exclude each other",
    ),
    "unknown topology level": (
        (LLAMA, "cluster.preferred_topology=topology.kubernetes.io/zone"),
        "cluster.preferred_topology='topology.kubernetes.io/zone': expected one of "
        "topology.k8s.aws/network-node-layer-1",
    ),
    "queue name not a DNS label": (
        (LLAMA, "cluster.queue_name=Team_A.Queue"),
        "cluster.queue_name='Team_A.Queue': not a valid Kueue LocalQueue name",
    ),
    "priority class not a DNS name": (
        (LLAMA, "cluster.priority_class=High_Priority"),
        "cluster.priority_class='High_Priority': not a valid Kueue WorkloadPriorityClass name",
    ),
    "restart window missing": (
        (LLAMA, "cluster.maxFullJobRestarts=2"),
        "cluster.evalPeriodSeconds: needed",
    ),
    "PyTorchJob restart key": (
        (LLAMA, "cluster.restartPolicy=OnFailure"),
        "cluster.restartPolicy=OnFailure: a PyTorchJob key",
    ),
    "cleanPodPolicy of the other kind": (
        (LLAMA, "cluster.cleanPodPolicy=Running"),
        "cluster.cleanPodPolicy='Running': expected one of All, OnlyComplete, None",
    ),
    # From the chart's values.schema.json, named by the cluster key.
    "negative retry budget": (
        (LLAMA, "cluster.jobMaxRetryCount=-1"),
        "cluster.jobMaxRetryCount=-1: expected 0 or more",
    ),
    "negative elastic timeout": (
        (LLAMA, "cluster.elastic_policy={min_nodes:16,max_nodes:16,graceful_shutdown_timeout:-5}"),
        "cluster.elastic_policy.graceful_shutdown_timeout=-5: expected 0 or more",
    ),
    "negative log-monitoring cut-off": (
        (
            LLAMA,
            "cluster.logMonitoringConfiguration=[{name:t,logPattern:'step',"
            "expectedStartCutOffInSeconds:-1}]",
        ),
        "cluster.logMonitoringConfiguration[0].expectedStartCutOffInSeconds=-1: expected 0 or more",
    ),
    "metric without a capture group": (
        (
            LLAMA,
            "cluster.logMonitoringConfiguration=[{name:t,logPattern:'tokens',"
            "metricThreshold:1,operator:lt}]",
        ),
        "needs exactly one capture group",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_values_are_one_line_errors(case: str, tmp_path: Path) -> None:
    overrides, expected = BAD[case]
    proc = run_launcher(
        *overrides, "cluster=k8s", HYPERPOD, "instance_type=p5.48xlarge", IMAGE,
        f"base_results_dir={tmp_path}", "dry_run=true",
        env={"HPL_STATE_DIR": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "c")},
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert expected in lines[0]
    assert not any(tmp_path.glob("*/k8s_template"))


def test_hyperpod_keys_on_a_pytorchjob_are_errors(tmp_path: Path) -> None:
    with pytest.raises(Exception, match=r"cluster\.elastic_policy: only a HyperPodPyTorchJob"):
        plan(
            ("cluster=k8s", IMAGE, "cluster.elastic_policy={min_nodes:1,max_nodes:2}",
             f"base_results_dir={tmp_path}"),
        )  # fmt: skip


def test_priority_class_name_spelled_like_task_governance_gets_a_notice(tmp_path: Path) -> None:
    the_plan = plan(
        ("cluster=k8s", HYPERPOD, IMAGE, "cluster.priority_class_name=training-priority",
         f"base_results_dir={tmp_path}"),
    )  # fmt: skip
    assert "set cluster.priority_class=training-priority" in the_plan.request.summary


def test_chart_in_the_repo_builds_with_real_helm(tmp_path: Path, helm: str) -> None:
    """The repository's chart folders are a buildable chart: `helm dependency build` pulls the
    library chart from beside them, and lint passes with the launcher's values."""
    import shutil

    k8s = tmp_path / "k8s"
    shutil.copytree(REPO / "hyperpod_launcher/backends/k8s/charts", k8s)
    the_plan = plan((*CASES["llama_p5_defaults"], f"base_results_dir={tmp_path / 'r'}"))
    chart = k8s / "hyperpodpytorchjob"
    (chart / "values.yaml").write_text(the_plan.files["k8s_template/values.yaml"][0])
    run(helm, "dependency", "build", str(chart))
    proc = run(helm, "lint", "--strict", str(chart))
    assert "0 chart(s) failed" in proc.stdout
