"""The rendered Helm chart, checked with the real Helm 4 and the Kubernetes API schemas.

For each recipe x option set: `helm lint --strict`, `helm template` (with the PyTorchJob
API), `helm install --dry-run=client` with the launcher's exact argv, and the manifests
validated strictly (k8s_schemas). Then what the manifests must say: rendezvous, resources,
affinity, restartPolicy placement, secrets by reference only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import k8s_schemas
import pytest
import yaml

from hyperpod_launcher.backends.k8s import chart_schema
from hyperpod_launcher.backends.k8s import values as k8s_values
from hyperpod_launcher.launch.compose import plan
from tests.conftest import REPO, require_tool, shellcheck

LLAMA = "recipes=training/llama/hf_llama3_8b_seq8k_gpu_p5x16_pretrain"
IMAGE = "container=123456789012.dkr.ecr.us-west-2.amazonaws.com/train:1.0"
HF_TOKEN = "hf_NotARealToken0123456789"
WANDB_KEY = "wandb-not-a-real-key-42"
SHA = "0123456789abcdef0123456789abcdef01234567"

CASES: dict[str, tuple[str, ...]] = {
    "llama_p5_defaults": (LLAMA, "cluster=k8s", "instance_type=p5.48xlarge", IMAGE),
    "llama_p5_every_option": (
        LLAMA,
        "cluster=k8s",
        "instance_type=ml.p5.48xlarge",
        IMAGE,
        f"git.commit={SHA}",
        "cluster.namespace=team-a",
        "cluster.kube_context=arn:aws:eks:us-west-2:123456789012:cluster/prod",
        "cluster.pullPolicy=IfNotPresent",
        "cluster.restartPolicy=OnFailure",
        "cluster.backoffLimit=3",
        "cluster.cleanPodPolicy=All",
        "cluster.ttlSecondsAfterFinished=3600",
        "++cluster.custom_labels={team:ml,example.com/cost-center:42}",
        "++cluster.annotations={note:'a: \"quoted\" #value',example.com/owner:'ml team'}",
        "cluster.service_account_name=trainer",
        "cluster.priority_class_name=high-priority",
        "cluster.queue_name=team-a-queue",
        "cluster.image_pull_secrets=[regcred]",
        "cluster.scheduler_name=default-scheduler",
        "cluster.host_network=true",
        "cluster.tolerations=[{key:dedicated,operator:Equal,value:ml,effect:NoSchedule}]",
        "cluster.volumes=[{volumeName:data,hostPath:/mnt/data,mountPath:/data,readOnly:true}]",
        "cluster.persistent_volume_claims=[{claimName:fsx-claim,mountPath:/fsx}]",
        "++cluster.label_selector.required={topology.k8s.aws/zone-id:[usw2-az1],team:[ml,ml2]}",
        "++cluster.label_selector.preferred={topology.k8s.aws/network-node-layer-1:[nn-1],b:[x]}",
        "cluster.label_selector.weights=[100,50]",
        "cluster.cpu_request=180",
        "cluster.memory_request=1800Gi",
        "cluster.shm_size=512Gi",
        "cluster.pre_script=['echo pre \"$HOSTNAME\"','export FOO=1']",
        "cluster.post_script=['echo post']",
        "cluster.helm_args=['--timeout=10m']",
        "recipes.exp_manager.exp_dir=/fsx/exp/llama",
        f"recipes.model.hf_access_token={HF_TOKEN}",
        f"+env_vars.WANDB_API_KEY={WANDB_KEY}",
    ),
    "custom_cpu_single_pod": (
        "cluster=k8s",
        "container=python:3.11-slim",
        "training_cfg.run.name=AllReduce_Smoke",
        "training_cfg.script_args=[{--steps:5}]",
    ),
    "custom_trn1_git_module": (
        "cluster=k8s",
        "instance_type=trn1.32xlarge",
        "container=public.ecr.aws/neuron/pytorch-training-neuronx:2.1.2",
        "git.repo_url_or_path=https://github.com/example/train.git",
        "git.branch=main",
        "git.entry_module=train.main",
        "training_cfg.entry_script=null",
        "training_cfg.run.name=trn-custom",
        "training_cfg.run.nodes=4",
        "training_cfg.run.ntasks_per_node=null",
        "training_cfg.run.time_limit=02:00:00",
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
def options_chart(tmp_path_factory: pytest.TempPathFactory, helm: str) -> dict[str, Any]:
    """The case that sets every cluster option."""
    return render_case("llama_p5_every_option", tmp_path_factory, helm)


@pytest.fixture(scope="module")
def custom_chart(tmp_path_factory: pytest.TempPathFactory, helm: str) -> dict[str, Any]:
    """The custom-script case, whose run name is not a Kubernetes name."""
    return render_case("custom_cpu_single_pod", tmp_path_factory, helm)


def run(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([helm, *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"helm {' '.join(args)}:\n{proc.stdout}\n{proc.stderr}"
    return proc


def job_of(chart: dict[str, Any]) -> dict[str, Any]:
    (job,) = [o for o in chart["objects"] if o["kind"] == "PyTorchJob"]
    return job


def pods(chart: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        k: v["template"]["spec"] for k, v in job_of(chart)["spec"]["pytorchReplicaSpecs"].items()
    }


def container(pod: dict[str, Any]) -> dict[str, Any]:
    (main,) = [c for c in pod["containers"] if c["name"] == "pytorch"]
    return main


def env_of(pod: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(pod)["env"]}


def test_helm_lint_strict(chart: dict[str, Any], helm: str) -> None:
    proc = run(helm, "lint", "--strict", str(chart["chart_dir"]))
    assert "0 chart(s) failed" in proc.stdout


def test_install_dry_run_client_with_the_launchers_argv(chart: dict[str, Any], helm: str) -> None:
    argv = chart["plan"].request.submit_argv
    assert argv[:2] == ("helm", "install") and "--wait" not in argv
    proc = run(helm, *argv[1:], "--dry-run=client")
    assert "STATUS: pending-install" in proc.stdout
    assert f"NAMESPACE: {chart['plan'].spec.opts.namespace}" in proc.stdout


def test_manifests_are_valid_for_the_api_server_and_the_operator(chart: dict[str, Any]) -> None:
    assert chart["errors"] == []
    kinds = sorted(o["kind"] for o in chart["objects"])
    recipe_mode = chart["plan"].spec.mode == "recipe"
    assert kinds == sorted(["PyTorchJob", "ConfigMap"] + (["ConfigMap"] if recipe_mode else []))


def test_values_follow_the_charts_schema(chart: dict[str, Any]) -> None:
    schema = json.loads((chart["chart_dir"] / "values.schema.json").read_text())
    values = yaml.safe_load((chart["chart_dir"] / "values.yaml").read_text())
    jsonschema.Draft7Validator(schema).validate(values)


def test_names_replicas_and_rendezvous(chart: dict[str, Any]) -> None:
    spec = chart["plan"].spec
    job = job_of(chart)
    name = job["metadata"]["name"]
    assert name == chart["plan"].request.submit_argv[2]
    assert len(name) <= 53 and len(f"{name}-worker-{spec.nodes}") <= 63
    replicas = job["spec"]["pytorchReplicaSpecs"]
    assert replicas["Master"]["replicas"] == 1
    if spec.nodes == 1:
        assert "Worker" not in replicas
    else:
        assert replicas["Worker"]["replicas"] == spec.nodes - 1
    restart = k8s_values.restarts(spec)[0]  # the cluster file's, or from max_restarts
    for kind, replica in replicas.items():
        assert replica["restartPolicy"] == restart
        pod = replica["template"]["spec"]
        assert "restartPolicy" not in pod
        main = container(pod)
        assert main["ports"] == [{"name": "pytorchjob-port", "containerPort": 23456}]
        env = env_of(pod)
        assert env["HPL_REPLICA_TYPE"] == kind.lower()
        assert env["HPL_NNODES"] == str(spec.nodes)
        assert env["HPL_RDZV_ID"] == name
        assert "IPC_LOCK" in main["securityContext"]["capabilities"]["add"]
        shm = next(v for v in pod["volumes"] if v["name"] == "dshm")
        assert shm["emptyDir"]["medium"] == "Memory"


def test_code_is_checked_out_once_per_pod_at_the_given_commit(chart: dict[str, Any]) -> None:
    spec = chart["plan"].spec
    for pod in pods(chart).values():
        init = pod.get("initContainers", [])
        if spec.code.location is None:
            assert init == []
            continue
        (checkout,) = init
        env = {e["name"]: e.get("value", e.get("valueFrom")) for e in checkout["env"]}
        assert env["HPL_GIT_REPO"] == spec.code.location
        assert env["HPL_GIT_COMMIT"] == (spec.code.commit or "")
        assert env["HPL_GIT_TOKEN"]["secretKeyRef"]["optional"] is True


def test_resources_come_from_the_instance_table(chart: dict[str, Any]) -> None:
    spec = chart["plan"].spec
    for pod in pods(chart).values():
        limits = container(pod).get("resources", {}).get("limits", {})
        instance = spec.instance
        if instance is None:
            assert limits == {}
            continue
        device = {"gpu": "nvidia.com/gpu", "neuron": "aws.amazon.com/neurondevice"}
        assert limits[device[spec.accelerator]] == str(instance.devices)
        assert limits.get("vpc.amazonaws.com/efa") == (str(instance.efa) if instance.efa else None)
        terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        (term,) = terms["nodeSelectorTerms"]
        assert {
            "key": "node.kubernetes.io/instance-type",
            "operator": "In",
            "values": [instance.name, f"ml.{instance.name}"],
        } in term["matchExpressions"]


def test_every_option_lands_where_kubernetes_reads_it(options_chart: dict[str, Any]) -> None:
    chart = options_chart
    job = job_of(chart)
    assert job["metadata"]["namespace"] == "team-a"
    labels = job["metadata"]["labels"]
    assert labels["kueue.x-k8s.io/queue-name"] == "team-a-queue"
    assert labels["team"] == "ml" and labels["example.com/cost-center"] == "42"
    assert job["metadata"]["annotations"] == {
        "note": 'a: "quoted" #value',
        "example.com/owner": "ml team",
    }
    assert job["spec"]["runPolicy"] == {
        "cleanPodPolicy": "All",
        "backoffLimit": 3,
        "ttlSecondsAfterFinished": 3600,
        "activeDeadlineSeconds": 6 * 86400,
    }
    for replica in job["spec"]["pytorchReplicaSpecs"].values():
        assert replica["restartPolicy"] == "OnFailure"
        meta, pod = replica["template"]["metadata"], replica["template"]["spec"]
        assert meta["labels"]["team"] == "ml" and "kueue.x-k8s.io/queue-name" not in meta["labels"]
        assert meta["annotations"]["note"] == 'a: "quoted" #value'
        assert pod["serviceAccountName"] == "trainer"
        assert pod["priorityClassName"] == "high-priority"
        assert pod["schedulerName"] == "default-scheduler"
        assert pod["hostNetwork"] is True and pod["dnsPolicy"] == "ClusterFirstWithHostNet"
        assert pod["imagePullSecrets"] == [{"name": "regcred"}]
        assert {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"} in (
            pod["tolerations"]
        )
        affinity = pod["affinity"]["nodeAffinity"]
        (term,) = affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
        keys = [e["key"] for e in term["matchExpressions"]]
        assert keys == ["topology.k8s.aws/zone-id", "team", "node.kubernetes.io/instance-type"]
        preferred = affinity["preferredDuringSchedulingIgnoredDuringExecution"]
        assert [
            (p["weight"], p["preference"]["matchExpressions"][0]["key"]) for p in preferred
        ] == [
            (100, "topology.k8s.aws/network-node-layer-1"),
            (50, "b"),
        ]
        main = container(pod)
        assert main["imagePullPolicy"] == "IfNotPresent"
        assert main["resources"]["requests"]["cpu"] == "180"
        assert main["resources"]["requests"]["memory"] == "1800Gi"
        mounts = {m["name"]: m for m in main["volumeMounts"]}
        assert mounts["data"] == {"name": "data", "mountPath": "/data", "readOnly": True}
        assert mounts["hpl-pvc-0"]["mountPath"] == "/fsx"
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["data"]["hostPath"] == {"path": "/mnt/data"}
        assert volumes["hpl-pvc-0"]["persistentVolumeClaim"]["claimName"] == "fsx-claim"
        assert volumes["dshm"]["emptyDir"]["sizeLimit"] == "512Gi"
    argv = chart["plan"].request.submit_argv
    assert argv[4:] == (
        "--namespace",
        "team-a",
        "--kube-context",
        "arn:aws:eks:us-west-2:123456789012:cluster/prod",
        "--timeout=10m",
    )


def test_tokens_reach_pods_only_by_secret_reference(chart: dict[str, Any]) -> None:
    everything = chart["text"] + "".join(t for t, _ in chart["plan"].files.values())
    assert HF_TOKEN not in everything and WANDB_KEY not in everything
    if chart["case"] != "llama_p5_every_option":
        return
    for pod in pods(chart).values():
        env = env_of(pod)
        name = job_of(chart)["metadata"]["name"]
        for key in ("HF_TOKEN", "WANDB_API_KEY"):
            assert env[key] == {"secretKeyRef": {"name": f"{name}-secrets", "key": key}}


def test_scripts_configmap_holds_the_shared_train_script(chart: dict[str, Any]) -> None:
    spec = chart["plan"].spec
    name = job_of(chart)["metadata"]["name"]
    (scripts,) = [o for o in chart["objects"] if o["metadata"]["name"] == f"{name}-scripts"]
    data = scripts["data"]
    values = yaml.safe_load(chart["plan"].files["k8s_template/values.yaml"][0])
    assert data["train_script.sh"] == values["scripts"]["train_script.sh"]
    assert "torchrun" in data["train_script.sh"]
    assert f"--nproc-per-node={spec.procs_per_node}" in data["train_script.sh"]
    workdir = "/hpl/code" if spec.code.location else "/hpl/job"
    assert f"cd {workdir}\n" in data["train_script.sh"]
    (mode,) = {
        v["configMap"]["defaultMode"]
        for pod in pods(chart).values()
        for v in pod["volumes"]
        if v["name"] == "hpl-scripts"
    }
    assert mode == 0o755
    if spec.mode == "recipe":
        assert f"--config-path=/hpl/job --config-name={spec.recipe_file}" in data["train_script.sh"]
        (recipe,) = [o for o in chart["objects"] if o["metadata"]["name"] == f"{name}-recipe"]
        assert recipe["data"] == {
            spec.recipe_file: spec.recipe_yaml,
            **dict(getattr(spec, "config_files", ())),
        }
        for pod in pods(chart).values():
            mounts = [m for m in container(pod)["volumeMounts"] if m["name"] == "hpl-recipe"]
            assert {m["mountPath"] for m in mounts} == {f"/hpl/job/{f}" for f in recipe["data"]}
    if chart["case"] == "custom_cpu_single_pod":
        shipped = Path(spec.entry.script).read_text()
        assert data["allreduce_smoke.py"] == shipped
        assert '" /hpl/scripts/allreduce_smoke.py --steps 5\n' in data["train_script.sh"]
    if chart["case"] == "llama_p5_every_option":
        assert data["pre_script.sh"].endswith('echo pre "$HOSTNAME"\nexport FOO=1\n')
        assert data["post_script.sh"].endswith("echo post\n")


def test_chart_scripts_pass_shellcheck(options_chart: dict[str, Any], tmp_path: Path) -> None:
    chart = options_chart
    name = job_of(chart)["metadata"]["name"]
    (scripts,) = [o for o in chart["objects"] if o["metadata"]["name"] == f"{name}-scripts"]
    paths = []
    for file, text in scripts["data"].items():
        if file.endswith(".sh") and file not in ("pre_script.sh", "post_script.sh"):
            paths.append(tmp_path / file)
            paths[-1].write_text(text)
    paths.append(Path(chart["plan"].spec.launch_dir) / f"{chart['plan'].spec.name}_submission.sh")
    shellcheck(*paths)


def test_run_name_is_converted_to_a_dns_1035_name_with_a_notice(
    custom_chart: dict[str, Any],
) -> None:
    chart = custom_chart
    name = job_of(chart)["metadata"]["name"]
    assert name.startswith("allreduce-smoke-") and len(name) == len("allreduce-smoke-") + 6
    assert "run.name 'AllReduce_Smoke' is not a Kubernetes object name" in (
        chart["plan"].request.summary
    )
    assert job_of(chart)["metadata"]["labels"]["hyperpod-launcher/run-name"] == "AllReduce_Smoke"


def test_long_run_names_keep_every_pod_name_within_63(tmp_path: Path) -> None:
    name = "Very_Long-" + "x" * 110
    the_plan = plan(
        (
            "cluster=k8s",
            IMAGE,
            f"training_cfg.run.name={name}",
            "training_cfg.run.nodes=1200",
            f"base_results_dir={tmp_path}",
        ),
        launch_id="l",
    )
    release = the_plan.request.submit_argv[2]
    assert len(release) <= 53 and len(f"{release}-worker-1198") <= 63
    assert chart_schema.check(release, "pytorchjob", "dns1123Label") is None
    assert release[0].isalpha()


def test_each_launch_gets_its_own_release_name(tmp_path: Path) -> None:
    args = ("cluster=k8s", IMAGE, f"base_results_dir={tmp_path}")
    first = plan(args, launch_id="20260101-000000-aaaa").request.submit_argv[2]
    again = plan(args, launch_id="20260101-000000-aaaa").request.submit_argv[2]
    other = plan(args, launch_id="20260101-000000-bbbb").request.submit_argv[2]
    assert first == again != other


def test_chart_in_the_repo_is_what_the_launcher_copies() -> None:
    from hyperpod_launcher.backends.k8s.backend import chart_files

    k8s = REPO / "hyperpod_launcher/backends/k8s/charts"
    for chart in ("pytorchjob", "hyperpodpytorchjob"):
        root = k8s / chart
        on_disk = {
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.is_file() and not p.relative_to(root).as_posix().startswith("charts/")
        }
        library = k8s / "hpl-common"
        on_disk |= {
            f"charts/hpl-common/{p.relative_to(library).as_posix()}"
            for p in library.rglob("*")
            if p.is_file()
        }
        assert set(chart_files(chart)) == on_disk
        assert os.access(root / "files" / "entrypoint.sh", os.R_OK)


def test_render_is_pure_deterministic_and_imports_no_kubernetes_client(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from hyperpod_launcher.launch.compose import plan\n"
        f"args = ({', '.join(repr(a) for a in CASES['llama_p5_every_option'])}, "
        f"'base_results_dir={tmp_path}')\n"
        "a = plan(args, launch_id='x').files\n"
        "b = plan(args, launch_id='x').files\n"
        "assert a == b\n"
        "loaded = [m for m in ('kubernetes', 'boto3', 'sagemaker') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert list(tmp_path.iterdir()) == []  # render writes nothing
