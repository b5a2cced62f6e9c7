"""Kubernetes: a Helm chart for a Kubeflow PyTorchJob, installed with `helm install`.

render: the static chart under backends/k8s/charts/pytorchjob/ plus the launcher's values.yaml
        (k8s_values.build) in <job folder>/k8s_template/, and <name>_submission.sh.
dry run: also `helm template` -> manifests.yaml (skipped, with the reason, without helm).
submit: create/update the tokens' Secret (secret.py), then `helm install`; the code commit
        the launcher checked out is already pinned in values.yaml (render runs after it).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from hyperpod_launcher import __version__
from hyperpod_launcher.backends.base import (
    Backend,
    RenderedFile,
    Request,
    Submitted,
)
from hyperpod_launcher.backends.k8s import secret as k8s_secret
from hyperpod_launcher.backends.k8s import values as k8s_values
from hyperpod_launcher.backends.k8s.chart_schema import CHARTS_DIR
from hyperpod_launcher.backends.k8s.jobs import HELM_MISSING, K8sJobs
from hyperpod_launcher.jobs.records import JobRecord
from hyperpod_launcher.spec.job import JobSpec, LaunchOptions, Secrets
from hyperpod_launcher.util import templating, yaml_text
from hyperpod_launcher.util.errors import BackendError

if TYPE_CHECKING:
    from hyperpod_launcher.jobs.status import JobStatus

CHART = "pytorchjob"
LIBRARY_CHART = "hpl-common"
CHART_DIR = "k8s_template"
VALUES = f"{CHART_DIR}/values.yaml"
MANIFESTS = "manifests.yaml"
CRD_API = "kubeflow.org/v1"
# helm template --api-versions, per chart: the job's API, as if its CRD were installed.
CHART_APIS = {
    CHART: CRD_API,
    "hyperpodpytorchjob": "sagemaker.amazonaws.com/v1",
    "novajob": CRD_API,
}
# Charts that stand alone (no shared library chart in charts/).
STANDALONE = {"novajob"}


def _tree(name: str) -> dict[str, str]:
    root = CHARTS_DIR / name
    files = {}
    for path in sorted(root.rglob("*")):
        relpath = path.relative_to(root).as_posix()
        if path.is_file() and path.name != "values.yaml" and not relpath.startswith("charts/"):
            files[relpath] = path.read_text()
    return files


@cache
def chart_files(chart: str = CHART) -> dict[str, str]:
    """The static chart, as {path relative to the chart: text} (values.yaml excluded), with
    the shared library chart unpacked in charts/ as `helm dependency build` would place it."""
    files = _tree(chart)
    if chart in STANDALONE:
        return files
    for relpath, text in _tree(LIBRARY_CHART).items():
        files[f"charts/{LIBRARY_CHART}/{relpath}"] = text
    return files


def values_header(spec: JobSpec, name: str) -> str:
    return (
        f"# Values of job {name} (run {spec.name}, launch {spec.launch_id}), written by\n"
        f"# hyperpod-launcher {__version__}. They are data: the chart's templates place them,\n"
        "# values.schema.json checks them. Tokens are not here: pods read them from the Secret\n"
        "# named in secretName.\n"
    )


def chart_path(spec: JobSpec) -> str:
    return os.path.join(spec.launch_dir, CHART_DIR)


def install_argv(spec: JobSpec, name: str, extra: list[str]) -> tuple[str, ...]:
    argv = ["helm", "install", name, chart_path(spec), "--namespace", spec.opts.namespace]
    if spec.opts.kube_context:
        argv += ["--kube-context", str(spec.opts.kube_context)]
    return (*argv, *extra)


def template_argv(spec: JobSpec, name: str, chart: str = CHART) -> list[str]:
    return [
        "helm",
        "template",
        name,
        chart_path(spec),
        "--namespace",
        spec.opts.namespace,
        "--api-versions",
        CHART_APIS[chart],
    ]


@dataclass(frozen=True)
class SecretRequest:
    """The Secret that submit creates or updates before `helm install`: its keys, not their
    values (those come from the submit's secrets, never from a file)."""

    name: str
    env_keys: tuple[str, ...]  # job environment variables whose values it carries
    git_token_key: str | None  # where the git token goes, when the code comes from git
    labels: Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class K8sRequest(Request):
    namespace: str
    kube_context: str | None
    kind: str  # PyTorchJob or HyperPodPyTorchJob
    chart_dir: str
    template_argv: tuple[str, ...]  # what a dry run renders the manifests with
    secret: SecretRequest | None
    # The job whose state and logs stand for the launch, when not the release's name (a Nova
    # PPO release installs one job per service).
    followed_job: str | None = None

    @property
    def release(self) -> str:
        return self.submit_argv[2]

    def also_sends(self) -> list[str]:
        if self.secret is None:
            return []
        keys = [*self.secret.env_keys]
        if self.secret.git_token_key:
            keys.append(f"{self.secret.git_token_key} (when git.token is set)")
        return [
            f"first: Secret {self.namespace}/{self.secret.name} through the Kubernetes API, keys "
            f"{', '.join(keys)} (values from this environment, never written)"
        ]


def _secret_request(spec: JobSpec, values: Mapping[str, Any], release: str) -> SecretRequest | None:
    if not spec.opts.create_secret:
        return None
    labels = {
        "app.kubernetes.io/name": "hyperpod-launcher",
        "app.kubernetes.io/instance": release,
        "hyperpod-launcher/launch-id": k8s_values.label_value(spec.launch_id),
    }
    git_key = k8s_values.GIT_TOKEN_KEY if spec.code.location else None
    env_keys = tuple(spec.secret_env)
    if not env_keys and git_key is None:
        return None
    return SecretRequest(values["secretName"], env_keys, git_key, labels)


class K8sBackend(Backend[K8sRequest]):
    preflight_checks = "hyperpod_launcher.backends.k8s.preflight"  # what `preflight` asks

    # The job commands (jobs.py) use the kubernetes client, which they import on first use.
    def status(self, records: list[JobRecord], detailed: bool = False) -> list[JobStatus]:
        return K8sJobs().status(records, detailed)

    def logs(self, record: JobRecord, follow: bool, rank: int | None) -> Iterator[str]:
        return K8sJobs().logs(record, follow, rank)

    def cancel(self, record: JobRecord) -> str:
        return K8sJobs().cancel(record)

    def validate(self, spec: JobSpec) -> None:
        if spec.nova is not None:
            from hyperpod_launcher.backends.k8s import nova_values

            nova_values.check_refused(spec)
        k8s_values.check_options(spec)

    def render(self, spec: JobSpec, launch: LaunchOptions) -> K8sRequest:
        followed = None
        if spec.nova is not None:
            from hyperpod_launcher.backends.k8s import nova_values

            chart = nova_values.build(spec)
            followed = nova_values.followed_job(spec, chart.name)
        else:
            chart = k8s_values.build(spec)
        name, values = chart.name, chart.values
        files = {
            f"{CHART_DIR}/{path}": RenderedFile(text)
            for path, text in chart_files(chart.chart).items()
        }
        files[VALUES] = RenderedFile(values_header(spec, name) + yaml_text.dump(values))
        argv = install_argv(spec, name, chart.helm_args)
        keys = [e["key"] for e in values.get("secretEnv", [])]
        if (values.get("code") or {}).get("repo"):
            keys.append(f"{k8s_values.GIT_TOKEN_KEY} (when git.token is set)")
        script = templating.render(
            "k8s/submission.sh.j2",
            spec=spec,
            version=__version__,
            release=name,
            namespace=spec.opts.namespace,
            chart_dir=chart_path(spec),
            template_argv=template_argv(spec, name, chart.chart),
            kind=chart.kind,
            secret_name=values.get("secretName"),
            secret_keys=keys,
            install_argv=argv,
        )
        files[f"{spec.name}_submission.sh"] = RenderedFile(script, 0o755)
        summary = (
            f"k8s {chart.kind} {name} in namespace {spec.opts.namespace}: {spec.nodes} pod(s) x "
            f"{spec.procs_per_node} process(es)"
        )
        if spec.nova is not None:
            services = ", ".join(f"{name}{s.suffix} x{s.nodes}" for s in spec.nova.services)
            summary = (
                f"k8s Nova {spec.nova.method} in namespace {spec.opts.namespace}: {services} "
                f"({spec.instance_type} nodes, {spec.procs_per_node} GPUs each)"
            )
        for notice in chart.notices:
            summary += f"\nnote: {notice}"
        return K8sRequest(
            files,
            argv,
            summary,
            namespace=spec.opts.namespace,
            kube_context=spec.opts.kube_context or None,
            kind=chart.kind,
            chart_dir=chart_path(spec),
            template_argv=tuple(template_argv(spec, name, chart.chart)),
            secret=_secret_request(spec, values, name) if spec.nova is None else None,
            followed_job=followed if followed != name else None,
        )

    def dry_run(
        self, spec: JobSpec, request: K8sRequest, jobdir: Any, say: Callable[[str], None]
    ) -> list[str]:
        """What `helm template` renders, as manifests.yaml; skipped (and said why) without helm."""
        helm = shutil.which("helm")
        if helm is None:
            say(f"dry run: {MANIFESTS} skipped: {HELM_MISSING}")
            return []
        argv = request.template_argv
        proc = subprocess.run(
            [helm, *argv[1:]], capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
        )
        if proc.returncode != 0:
            raise BackendError(
                f"helm template failed (exit {proc.returncode}): {proc.stderr.strip()}; "
                f"the chart is kept in {request.chart_dir}"
            )
        header = f"# {' '.join(argv)}\n"
        jobdir.write(MANIFESTS, header + proc.stdout)
        return [MANIFESTS]

    def submit(self, request: K8sRequest, secrets: Secrets) -> Submitted:
        helm = shutil.which("helm")
        if helm is None:
            raise BackendError(f"{HELM_MISSING}; the chart is kept in {request.chart_dir}")
        namespace, context = request.namespace, request.kube_context
        # helm and the Secret use the kubeconfig's current context when none is set; record
        # it, so status/logs/cancel still ask this cluster after the user switches context.
        recorded_context = context or current_kube_context()
        secret = _apply_secret(request, secrets)
        proc = subprocess.run(
            [helm, *request.submit_argv[1:]],
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if proc.returncode != 0:
            if secret and secret[1] == "created":
                k8s_secret.delete(namespace, secret[0], context)
            message = secrets.mask(proc.stderr.strip() or proc.stdout.strip() or "(no output)")
            raise BackendError(
                f"helm install failed (exit {proc.returncode}): {message}; "
                f"the chart is kept in {request.chart_dir}"
            )
        details: dict[str, object] = {
            "namespace": namespace,
            "release": request.release,
            "kind": request.kind,
            "kube_context": recorded_context,
            "helm_stdout": secrets.mask(proc.stdout.strip()),
        }
        if secret:
            details["secret"] = {"name": secret[0], "action": secret[1]}
        if request.followed_job:
            details["job_name"] = request.followed_job
        return Submitted(job_id=f"{namespace}/{request.release}", details=details)


def current_kube_context() -> str | None:
    """The current-context of the kubeconfig (the first file of KUBECONFIG that names one)."""
    import yaml

    paths = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    for path in paths.split(os.pathsep):
        try:
            with open(path, encoding="utf-8") as handle:
                config = yaml.safe_load(handle)
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(config, dict) and config.get("current-context"):
            return str(config["current-context"])
    return None


def _apply_secret(request: K8sRequest, secrets: Secrets) -> tuple[str, str] | None:
    """Create or update the Secret the pods reference; None when there is nothing to send."""
    wanted = request.secret
    if wanted is None:
        return None
    data = {key: secrets.env[key] for key in wanted.env_keys if key in secrets.env}
    if wanted.git_token_key and secrets.git_token:
        data[wanted.git_token_key] = secrets.git_token
    if not data:
        return None
    action = k8s_secret.apply(
        request.namespace, wanted.name, data, dict(wanted.labels), request.kube_context
    )
    return wanted.name, action
