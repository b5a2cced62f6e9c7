"""Kubernetes: a Helm chart for a Kubeflow PyTorchJob, installed with `helm install`.

render: the static chart under templates/k8s/pytorchjob/ plus the launcher's values.yaml
        (k8s_values.build) in <job folder>/k8s_template/, and <name>_submission.sh.
dry run: also `helm template` -> manifests.yaml (skipped, with the reason, without helm).
submit: pin the code commit, create/update the tokens' Secret (k8s_secret), `helm install`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hyperpod_launcher import __version__, resources, templating, yaml_text
from hyperpod_launcher.backends.base import (
    CANCEL,
    LOGS,
    STATUS,
    Backend,
    Rendered,
    RenderedFile,
    Submitted,
)
from hyperpod_launcher.backends.k8s import secret as k8s_secret
from hyperpod_launcher.backends.k8s import values as k8s_values
from hyperpod_launcher.backends.k8s.jobs import HELM_MISSING, K8sJobs
from hyperpod_launcher.errors import BackendError
from hyperpod_launcher.job import JobSpec, Secrets
from hyperpod_launcher.records import JobRecord

if TYPE_CHECKING:
    from hyperpod_launcher.status import JobStatus

CHART = "pytorchjob"
LIBRARY_CHART = "hpl-common"
CHART_DIR = "k8s_template"
VALUES = f"{CHART_DIR}/values.yaml"
MANIFESTS = "manifests.yaml"
CRD_API = "kubeflow.org/v1"
# helm template --api-versions, per chart: the job's API, as if its CRD were installed.
CHART_APIS = {CHART: CRD_API, "hyperpodpytorchjob": "sagemaker.amazonaws.com/v1"}
FULL_SHA = re.compile(r"^[0-9a-f]{40}$")


def _tree(name: str) -> dict[str, str]:
    root = resources.templates_dir() / "k8s" / name
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
    return os.path.join(spec.job_dir, CHART_DIR)


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


def release_of(rendered: Rendered) -> str:
    return rendered.submit_argv[2]


def chart_of(spec: JobSpec) -> str:
    return "hyperpodpytorchjob" if spec.opts.use_hyperpod_pytorch_job else CHART


class K8sBackend(Backend):
    name = "k8s"
    preflight_checks = "hyperpod_launcher.backends.k8s.preflight"  # what `preflight` asks
    capabilities = frozenset({STATUS, LOGS, CANCEL})

    # The job commands (jobs.py) use the kubernetes client, which they import on first use.
    def status(self, records: list[JobRecord], detailed: bool = False) -> list[JobStatus]:
        return K8sJobs().status(records, detailed)

    def logs(self, record: JobRecord, follow: bool, rank: int | None) -> Iterator[str]:
        return K8sJobs().logs(record, follow, rank)

    def cancel(self, record: JobRecord) -> str:
        return K8sJobs().cancel(record)

    def render(self, spec: JobSpec) -> Rendered:
        chart = k8s_values.build(spec)
        name, values = chart.name, chart.values
        files = {
            f"{CHART_DIR}/{path}": RenderedFile(text)
            for path, text in chart_files(chart.chart).items()
        }
        files[VALUES] = RenderedFile(values_header(spec, name) + yaml_text.dump(values))
        argv = install_argv(spec, name, chart.helm_args)
        keys = [e["key"] for e in values["secretEnv"]]
        if values["code"]["repo"]:
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
            secret_name=values["secretName"],
            secret_keys=keys,
            install_argv=argv,
        )
        files[f"{spec.name}_submission.sh"] = RenderedFile(script, 0o755)
        summary = (
            f"k8s {chart.kind} {name} in namespace {spec.opts.namespace}: {spec.nodes} pod(s) x "
            f"{spec.procs_per_node} process(es)"
        )
        for notice in chart.notices:
            summary += f"\nnote: {notice}"
        return Rendered(files, argv, summary)

    def dry_run(
        self, spec: JobSpec, rendered: Rendered, jobdir: Any, say: Callable[[str], None]
    ) -> list[str]:
        """What `helm template` renders, as manifests.yaml; skipped (and said why) without helm."""
        helm = shutil.which("helm")
        if helm is None:
            say(f"dry run: {MANIFESTS} skipped: {HELM_MISSING}")
            return []
        argv = template_argv(spec, release_of(rendered), chart_of(spec))
        proc = subprocess.run(
            [helm, *argv[1:]], capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
        )
        if proc.returncode != 0:
            raise BackendError(
                f"helm template failed (exit {proc.returncode}): {proc.stderr.strip()}; "
                f"the chart is kept in {chart_path(spec)}"
            )
        header = f"# {' '.join(argv)}\n"
        jobdir.write(MANIFESTS, header + proc.stdout)
        return [MANIFESTS]

    def submit(self, spec: JobSpec, rendered: Rendered, secrets: Secrets) -> Submitted:
        helm = shutil.which("helm")
        if helm is None:
            raise BackendError(f"{HELM_MISSING}; the chart is kept in {chart_path(spec)}")
        name = release_of(rendered)
        namespace = spec.opts.namespace
        context = spec.opts.kube_context or None
        # helm and the Secret use the kubeconfig's current context when none is set; record
        # it, so status/logs/cancel still ask this cluster after the user switches context.
        recorded_context = context or current_kube_context()
        pinned = _pin_commit(spec)
        secret = _apply_secret(spec, name, secrets)
        proc = subprocess.run(
            [helm, *rendered.submit_argv[1:]],
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
                f"the chart is kept in {chart_path(spec)}"
            )
        details: dict[str, object] = {
            "namespace": namespace,
            "release": name,
            "kind": "HyperPodPyTorchJob" if chart_of(spec) != CHART else "PyTorchJob",
            "kube_context": recorded_context,
            "helm_stdout": secrets.mask(proc.stdout.strip()),
        }
        if pinned:
            details["pinned_commit"] = pinned
        if secret:
            details["secret"] = {"name": secret[0], "action": secret[1]}
        return Submitted(job_id=f"{namespace}/{name}", details=details)


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


def _pin_commit(spec: JobSpec) -> str | None:
    """Pin every pod to the commit the launcher checked out on this host (execute() cloned
    it just before submit): values.yaml gets the full SHA, so no pod follows a moving
    branch. Nothing to do without git code, or with a full SHA given."""
    code = spec.code
    if not code.location or not code.checkout_dir or (code.commit and FULL_SHA.match(code.commit)):
        return None
    if not (Path(code.checkout_dir) / ".git").exists():
        return None
    proc = subprocess.run(
        ["git", "-C", code.checkout_dir, "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    sha = proc.stdout.strip()
    if proc.returncode != 0 or not FULL_SHA.match(sha):
        raise BackendError(f"cannot read the checked-out commit in {code.checkout_dir}")
    import yaml

    path = Path(spec.job_dir) / VALUES
    text = path.read_text()
    values = yaml.safe_load(text)
    values["code"]["commit"] = sha
    header = "".join(line + "\n" for line in text.splitlines() if line.startswith("#"))
    tmp = path.with_name(f".{path.name}.pin")
    tmp.write_text(header + f"# code.commit pinned at submit to {sha}\n" + yaml_text.dump(values))
    os.replace(tmp, path)
    return sha


def _apply_secret(spec: JobSpec, name: str, secrets: Secrets) -> tuple[str, str] | None:
    """Create or update the Secret the pods reference; None when there is nothing to send."""
    data = {key: secrets.env[key] for key in spec.secret_env if key in secrets.env}
    if secrets.git_token and spec.code.location:
        data[k8s_values.GIT_TOKEN_KEY] = secrets.git_token
    if not data or not spec.opts.create_secret:
        return None
    secret_name = k8s_values.secret_name(spec, name)
    labels = {
        "app.kubernetes.io/name": "hyperpod-launcher",
        "app.kubernetes.io/instance": name,
        "hyperpod-launcher/launch-id": k8s_values.label_value(spec.launch_id),
    }
    action = k8s_secret.apply(
        spec.opts.namespace, secret_name, data, labels, spec.opts.kube_context or None
    )
    return secret_name, action
