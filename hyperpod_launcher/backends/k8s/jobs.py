"""Follow Kubernetes jobs: the job's conditions and pods, pod logs, `helm uninstall`.

Kept apart from the renderer: these commands need the kubernetes client (imported here, on
use) and none of the chart code. What to ask comes from the job.json that submit wrote:
details.namespace, .release (the job has the release's name, unless .job_name names the job
that stands for a release of several), .kind (PyTorchJob when absent), .kube_context and
.secret; `cancel` adds `cancelled_at`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hyperpod_launcher.jobs import index as job_index
from hyperpod_launcher.jobs import status as st
from hyperpod_launcher.jobs.logfiles import Note
from hyperpod_launcher.jobs.records import JobRecord
from hyperpod_launcher.util.errors import BackendError


@dataclass(frozen=True)
class JobKind:
    group: str
    version: str
    plural: str
    job_label: str  # set by the operator on the job's pods, value: the job's name
    container: str  # the training container (the chart's name for it)
    operator: str  # what is missing when the API has no such resource


KINDS = {
    "PyTorchJob": JobKind(
        "kubeflow.org", "v1", "pytorchjobs", "training.kubeflow.org/job-name", "pytorch",
        "the Kubeflow training operator (its PyTorchJob CRD)",
    ),
    "HyperPodPyTorchJob": JobKind(
        "sagemaker.amazonaws.com", "v1", "hyperpodpytorchjobs", "HPJob", "pytorch-job-container",
        "the HyperPod training operator (EKS add-on amazon-sagemaker-hyperpod-training-operator)",
    ),
}  # fmt: skip
DEFAULT_KIND = "PyTorchJob"
TYPE_LABEL = "training.kubeflow.org/replica-type"  # "master" / "worker"
INDEX_LABEL = "training.kubeflow.org/replica-index"
CONDITION_STATES = {
    "Created": st.PENDING,
    "Suspended": st.PENDING,
    "PodsRunning": st.RUNNING,
    "Running": st.RUNNING,
    "Restarting": st.RUNNING,
    "Succeeded": st.SUCCEEDED,
    "Completed": st.SUCCEEDED,  # HyperPodPyTorchJob's word
    "Failed": st.FAILED,
}
FINAL = ("Succeeded", "Completed", "Failed")
# Container waiting reasons that are just progress, not worth a mention.
STARTING = {"ContainerCreating", "PodInitializing"}
TIMEOUT = (5, 60)  # connect, read (seconds) for every call but a followed log
POLL_SECONDS = 2.0
DRAIN_SECONDS = 60.0  # after the job ends, how long to wait for the log streams to finish
INSTALL_HINT = "pip install 'hyperpod-launcher[k8s]'"
HELM_MISSING = (
    "helm not found on PATH: install Helm (https://helm.sh/docs/intro/install/; in this "
    "repository: bash scripts/install_helm.sh, then add .tools/bin to PATH)"
)


@dataclass(frozen=True)
class Ref:
    """Where a launched PyTorchJob lives, from its record."""

    job_id: str
    namespace: str
    name: str  # the job followed
    release: str
    kind: str
    context: str | None
    secret: str | None  # the tokens' Secret, when this launch created it
    kept_secret: str | None  # a Secret that existed before the launch (updated, not created)
    cancelled_at: str | None
    record: JobRecord

    @classmethod
    def of(cls, record: JobRecord) -> Ref:
        details = record.details
        namespace, _, name = str(record.job_id).partition("/")
        secret = details.get("secret") or {}
        created = secret.get("action") == "created"
        release = details.get("release") or name
        return cls(
            job_id=str(record.job_id),
            namespace=details.get("namespace") or namespace,
            name=details.get("job_name") or release,
            release=release,
            kind=details["kind"] if details.get("kind") in KINDS else DEFAULT_KIND,
            context=details.get("kube_context") or None,
            secret=secret.get("name") if created else None,
            kept_secret=secret.get("name") if secret and not created else None,
            cancelled_at=record.cancelled_at,
            record=record,
        )

    @property
    def api(self) -> JobKind:
        return KINDS[self.kind]

    @property
    def where(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


def unsubmitted(record: JobRecord) -> st.JobStatus | None:
    """The status of a launch that never reached the cluster, or None."""
    submit = record.submit_status
    if submit == "dry_run":
        return st.JobStatus(st.UNKNOWN, "dry run", detail="a dry run: nothing was submitted")
    if submit == "failed" or not record.job_id:
        detail = record.error or "the submit failed"
        return st.JobStatus(st.FAILED, "not submitted", detail=detail)
    return None


# --- state mapping (pure) -------------------------------------------------------------------


def _order(pod: dict[str, Any]) -> tuple[int, int, str]:
    labels = (pod.get("metadata") or {}).get("labels") or {}
    index = labels.get(INDEX_LABEL, "0")
    return (
        0 if labels.get(TYPE_LABEL) == "master" else 1,
        int(index) if str(index).isdigit() else 0,
        pod["metadata"].get("name", ""),
    )


def _container(pod: dict[str, Any], init: bool = False) -> list[dict[str, Any]]:
    key = "initContainerStatuses" if init else "containerStatuses"
    return (pod.get("status") or {}).get(key) or []


def _training(pod: dict[str, Any]) -> dict[str, Any] | None:
    names = {kind.container for kind in KINDS.values()}
    return next((c for c in _container(pod) if c.get("name") in names), None)


def _container_problem(cs: dict[str, Any], init: bool) -> str | None:
    what = f"init container {cs.get('name')} " if init else ""
    state = cs.get("state") or {}
    waiting, done = state.get("waiting") or {}, state.get("terminated") or {}
    last = (cs.get("lastState") or {}).get("terminated") or {}
    if waiting.get("reason") and waiting["reason"] not in STARTING:
        return f"{what}{waiting['reason']}: {waiting.get('message', '')}".rstrip(": ")
    if done and done.get("exitCode", 0) != 0:
        return f"{what}{done.get('reason') or 'Error'} (exit code {done['exitCode']})"
    if not init and cs.get("restartCount") and last:
        return (
            f"restarted {cs['restartCount']} time(s), last exit: "
            f"{last.get('reason') or 'Error'} (exit code {last.get('exitCode')})"
        )
    return None


def _pod_problem(pod: dict[str, Any]) -> str | None:
    """The most specific thing wrong with one pod: its containers, scheduling, eviction."""
    for init in (True, False):
        for cs in _container(pod, init):
            found = _container_problem(cs, init)
            if found:
                return found
    status = pod.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            return f"{cond.get('reason') or 'Unschedulable'}: {cond.get('message', '')}".rstrip(
                ": "
            )
    if status.get("reason"):  # e.g. Evicted
        return f"{status['reason']}: {status.get('message', '')}".rstrip(": ")
    return None


def pod_problems(pods: list[dict[str, Any]]) -> list[str]:
    """What keeps pods from running, or what killed them, one phrase per pod."""
    problems = []
    for pod in pods:
        found = _pod_problem(pod)
        if found:
            problems.append(f"pod {pod['metadata']['name']}: {found}")
    return problems


def _exit_code(pods: list[dict[str, Any]]) -> int | None:
    """The first pod's (the master's) training container's exit code, once it has one."""
    for pod in pods[:1]:
        cs = _training(pod) or {}
        for state in (cs.get("state"), cs.get("lastState")):
            done = (state or {}).get("terminated")
            if done and done.get("exitCode") is not None:
                return int(done["exitCode"])
    return None


def job_status(
    ref: Ref, job: dict[str, Any] | None, pods: list[dict[str, Any]], gone: str = ""
) -> st.JobStatus:
    """A PyTorchJob (None: not found) and its pods, in the launcher's vocabulary."""
    if job is None:
        if ref.cancelled_at:
            return st.JobStatus(
                st.CANCELLED, "Deleted", detail=f"cancelled at {ref.cancelled_at} (helm uninstall)"
            )
        return st.JobStatus(st.UNKNOWN, "NotFound", detail=gone)
    conditions = [c for c in (job.get("status") or {}).get("conditions") or [] if c.get("type")]
    true = [c for c in conditions if c.get("status") == "True"]
    final = [c for c in true if c["type"] in FINAL]
    current = (final or true or [None])[-1]
    pods = sorted(pods, key=_order)
    problems = pod_problems(pods)
    if current is None:
        word, state = "NoConditions", st.PENDING
        if not pods:
            problems.insert(0, "the training operator has not picked the job up yet")
    else:
        word = current["type"]
        state = CONDITION_STATES.get(word, st.UNKNOWN)
        if word in ("Failed", "Restarting", "Suspended") and current.get("message"):
            problems.insert(0, current["message"])
    if state == st.RUNNING and ref.kind != DEFAULT_KIND:
        word = _restarts(job) or word
    problems += _faulty(job)
    exit_code = _exit_code(pods) if state in (st.SUCCEEDED, st.FAILED) else None
    if ref.cancelled_at and state not in (st.SUCCEEDED, st.FAILED):
        state = st.CANCELLED
        problems.insert(
            0, f"cancelled at {ref.cancelled_at}; the job and its pods are being deleted"
        )
    if job.get("metadata", {}).get("deletionTimestamp") and not ref.cancelled_at:
        problems.insert(0, f"being deleted since {job['metadata']['deletionTimestamp']}")
    if len(problems) > 4:
        problems = [*problems[:4], f"and {len(problems) - 4} more"]
    return st.JobStatus(state, word, exit_code, "; ".join(problems))


def _restarts(job: dict[str, Any]) -> str | None:
    """'restarting 2/5' (restarts so far / runPolicy.jobMaxRetryCount) for a restarted
    HyperPodPyTorchJob, with the full job restarts of the current window when it had any."""
    status = job.get("status") or {}
    count = status.get("restartCount") or 0
    if not count:
        return None
    policy = (job.get("spec") or {}).get("runPolicy") or {}
    limit = policy.get("jobMaxRetryCount")
    text = f"restarting {count}/{limit}" if limit is not None else f"restarting {count}"
    full = (status.get("restartStatus") or {}).get("fullJobRestartCount") or 0
    if full:
        most = (policy.get("restartPolicy") or {}).get("maxFullJobRestarts")
        text += f", full job restarts {full}" + (f"/{most}" if most is not None else "")
    return text


def _faulty(job: dict[str, Any]) -> list[str]:
    latest = (job.get("status") or {}).get("latestFaultyPodInstanceList") or {}
    pods = latest.get("faultyPodList") or []
    if not pods:
        return []
    how = {"PLR": "process-level", "JLR": "job-level"}.get(str(latest.get("restartType")), "a")
    return [f"last restart ({how}) for pod(s) {', '.join(map(str, pods[:4]))}"]


# --- the API --------------------------------------------------------------------------------


class _NotFound(Exception):
    def __init__(self, message: str, kind: str | None) -> None:
        super().__init__(message)
        self.kind = kind


def _kubeconfig_path() -> str:
    return os.environ.get("KUBECONFIG") or "~/.kube/config"


class Cluster:
    """The API of one kube context, with its errors turned into one-line BackendErrors."""

    def __init__(self, context: str | None) -> None:
        try:
            from kubernetes import client, config
        except ImportError:
            raise BackendError(
                f"the kubernetes Python client is not installed: {INSTALL_HINT}"
            ) from None
        self.context = context
        try:
            contexts, current = config.list_kube_config_contexts()
        except (config.ConfigException, OSError) as err:
            self.api = self._in_cluster(client, config, context, err)
        else:
            names = [c.get("name") for c in contexts or []]
            if context is not None and context not in names:
                raise BackendError(
                    f"kube context {context!r} (the job's cluster.kube_context) is not in the "
                    f"kubeconfig {_kubeconfig_path()} (it has: {', '.join(names) or 'none'}); add "
                    f"it (e.g. aws eks update-kubeconfig --name <cluster> --alias {context}) or "
                    "set KUBECONFIG to the file that has it"
                )
            self.context_name = context or (current or {}).get("name")
            try:
                self.api = config.new_client_from_config(context=context)
            except config.ConfigException as err:
                raise BackendError(f"kubeconfig {_kubeconfig_path()}: {err}") from None
        self.custom = client.CustomObjectsApi(self.api)
        self._core: Any = None

    @property
    def core(self) -> Any:
        """CoreV1Api, built on first use: its module builds every core model class (about
        0.6 s), which `jobs` (PyTorchJob conditions only) does without."""
        if self._core is None:
            from kubernetes import client

            self._core = client.CoreV1Api(self.api)
        return self._core

    def _in_cluster(self, client: Any, config: Any, context: str | None, err: Exception) -> Any:
        if context is None:
            configuration = client.Configuration()
            try:
                config.load_incluster_config(client_configuration=configuration)
            except config.ConfigException:
                pass
            else:
                self.context_name = "in-cluster"
                return client.ApiClient(configuration)
        raise BackendError(
            f"no Kubernetes configuration: {err} (KUBECONFIG={_kubeconfig_path()}); set KUBECONFIG "
            "to your cluster's kubeconfig (e.g. aws eks update-kubeconfig --name <cluster>)"
        ) from None

    @property
    def where(self) -> str:
        host = self.api.configuration.host
        return f"{host} (kube context {self.context_name!r})"

    def call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        import urllib3
        from kubernetes.client.rest import ApiException

        try:
            return fn(*args, **kwargs)
        except ApiException as err:
            body = _body(err)
            if err.status == 404:
                raise _NotFound(body.get("message") or "not found", _kind(body)) from None
            hint = ""
            if err.status in (401, 403):
                hint = (
                    "; check the kubeconfig's credentials and that your user may get "
                    "pytorchjobs and list pods, pods/log and secrets in the namespace"
                )
            message = body.get("message") or err.reason
            raise BackendError(
                f"Kubernetes API at {self.where}: HTTP {err.status} {message}{hint}"
            ) from None
        except (urllib3.exceptions.HTTPError, OSError) as err:
            raise BackendError(
                f"cannot reach the Kubernetes API server at {self.where}: {_reason(err)}; check "
                "that the cluster is up and reachable from here (VPN, endpoint access) and the "
                f"kubeconfig ({_kubeconfig_path()})"
            ) from None

    def job(self, ref: Ref) -> dict[str, Any] | None:
        api = ref.api
        try:
            return self.call(
                self.custom.get_namespaced_custom_object,
                api.group, api.version, ref.namespace, api.plural, ref.name,
                _request_timeout=TIMEOUT,
            )  # fmt: skip
        except _NotFound as missing:
            # A job that is gone names its kind; a cluster without the CRD names none.
            if missing.kind is None and "could not find the requested resource" in str(missing):
                raise BackendError(
                    f"{self.where} has no {api.plural}.{api.group}/{api.version} resource: "
                    f"{api.operator} is not installed in this cluster"
                ) from None
            return None

    def pods(self, ref: Ref) -> list[dict[str, Any]]:
        resp = self.call(
            self.core.list_namespaced_pod,
            ref.namespace,
            label_selector=f"{ref.api.job_label}={ref.name}",
            _preload_content=False,
            _request_timeout=TIMEOUT,
        )
        return sorted(json.loads(resp.data).get("items") or [], key=_order)

    def log(self, ref: Ref, pod: str, follow: bool = False) -> Any:
        """The raw response (a urllib3 response), so a followed log can be streamed."""
        kwargs: dict[str, Any] = {"container": ref.api.container, "_preload_content": False}
        if follow:  # no read timeout: a training log can be quiet for a long time
            kwargs["follow"] = True
        else:
            kwargs["_request_timeout"] = TIMEOUT
        return self.call(self.core.read_namespaced_pod_log, pod, ref.namespace, **kwargs)

    def delete_secret(self, namespace: str, name: str) -> bool:
        """True when it was deleted, False when it was gone already."""
        try:
            self.call(self.core.delete_namespaced_secret, name, namespace, _request_timeout=TIMEOUT)
        except _NotFound:
            return False
        return True


def _body(err: Any) -> dict[str, Any]:
    try:
        body = json.loads(err.body or "{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _kind(body: dict[str, Any]) -> str | None:
    return (body.get("details") or {}).get("kind")


def _reason(err: Exception) -> str:
    text = str(getattr(err, "reason", None) or err)
    found = re.search(r"\[Errno -?\d+\][^\"')]*", text)
    return found.group(0).strip() if found else text


# --- the lifecycle commands -----------------------------------------------------------------


class K8sJobs:
    def __init__(self) -> None:
        self._clusters: dict[str | None, Cluster] = {}

    def cluster(self, ref: Ref) -> Cluster:
        if ref.context not in self._clusters:
            self._clusters[ref.context] = Cluster(ref.context)
        return self._clusters[ref.context]

    def _status(self, record: JobRecord, detailed: bool) -> st.JobStatus:
        full = job_index.full(record)
        early = unsubmitted(full)
        if early is not None:
            return early
        ref = Ref.of(full)
        cluster = self.cluster(ref)
        job = cluster.job(ref)
        pods = cluster.pods(ref) if detailed and job is not None else []
        gone = (
            f"{ref.where} is not in {cluster.where}: deleted outside the launcher (helm "
            "uninstall, kubectl delete or runPolicy.ttlSecondsAfterFinished), or the kube "
            "context now points at another cluster"
        )
        return job_status(ref, job, pods, gone)

    def status(self, records: list[JobRecord], detailed: bool = False) -> list[st.JobStatus]:
        if detailed:
            return [self._status(record, True) for record in records]
        # `jobs`: one unreachable cluster must not hide the others' jobs.
        result = []
        for record in records:
            try:
                result.append(self._status(record, False))
            except BackendError as err:
                result.append(st.JobStatus(st.UNKNOWN, "?", warning=str(err)))
        return result

    def logs(self, record: JobRecord, follow: bool, rank: int | None) -> Iterator[str]:
        from hyperpod_launcher.jobs.logfiles import rank_filter

        full = job_index.full(record)
        early = unsubmitted(full)
        if early is not None:
            raise BackendError(f"no logs: {early.describe()}")
        ref = Ref.of(full)
        cluster = self.cluster(ref)
        keep = rank_filter(rank)
        if follow:
            yield from _Follower(cluster, ref, keep).lines()
            return
        pods = cluster.pods(ref)
        if not pods:
            current = self._status(full, False)
            yield Note(f"no pods of {ref.where} ({current.describe()})")
        for pod in pods:
            name = pod["metadata"]["name"]
            try:
                text = cluster.log(ref, name).data.decode("utf-8", "replace")
            except BackendError as err:
                if "HTTP 400" not in str(err):
                    raise
                yield Note(f"pod {name}: no log yet ({err})")
                continue
            except _NotFound:
                continue
            yield from filter(keep, text.splitlines())

    def cancel(self, record: JobRecord) -> str:
        full = job_index.full(record)
        early = unsubmitted(full)
        if early is not None:
            return f"nothing to cancel: {early.describe()}"
        ref = Ref.of(full)
        if ref.cancelled_at:
            return f"k8s job {ref.job_id} was already cancelled at {ref.cancelled_at}"
        cluster = self.cluster(ref)
        job = cluster.job(ref)
        if job is not None:
            current = job_status(ref, job, [])
            if current.finished:
                return (
                    f"k8s job {ref.job_id} already finished: {current.describe()}; its release "
                    f"stays installed for its logs (helm uninstall {ref.release} --namespace "
                    f"{ref.namespace} removes it)"
                )
        uninstalled = _helm_uninstall(ref)
        if not uninstalled:
            return f"k8s job {ref.job_id} is already uninstalled (helm: release not found)"
        said = f"helm uninstall {ref.release}"
        if ref.secret:
            deleted = cluster.delete_secret(ref.namespace, ref.secret)
            said += f"; {'deleted' if deleted else 'no'} Secret {ref.namespace}/{ref.secret}"
        elif ref.kept_secret:
            said += f"; kept Secret {ref.namespace}/{ref.kept_secret} (it existed before)"
        if job is None:
            return f"k8s job {ref.job_id}: {said} (the {ref.kind} was already gone)"
        _mark_cancelled(full)
        return f"cancelled k8s job {ref.job_id}: {said} (the job and its pods are being deleted)"


def _helm_uninstall(ref: Ref) -> bool:
    """Uninstall the release (no --wait); False when helm says it is not installed."""
    helm = shutil.which("helm")
    if helm is None:
        raise BackendError(HELM_MISSING)
    argv = [helm, "uninstall", ref.release, "--namespace", ref.namespace]
    if ref.context:
        argv += ["--kube-context", ref.context]
    proc = subprocess.run(
        argv, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )
    if proc.returncode == 0:
        return True
    message = proc.stderr.strip() or proc.stdout.strip() or "(no output)"
    if re.search(r"not found", message, re.IGNORECASE) and ref.release in message:
        return False
    raise BackendError(f"helm uninstall failed (exit {proc.returncode}): {message}")


def _mark_cancelled(record: JobRecord) -> None:
    """Write cancelled_at into the launch's job.json (in its launch folder, and on top while
    it is the newest launch)."""
    import datetime as dt

    from hyperpod_launcher.prepare.jobdir import JobDir

    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    cancelled = dataclasses.replace(record, cancelled_at=now)
    JobDir(record.job_dir, str(record.launch_id)).write_record(cancelled)


class _Follower:
    """Stream every pod's training container log until the job ends: one thread per
    container instance (a restarted container is a new instance), lines kept whole."""

    def __init__(self, cluster: Cluster, ref: Ref, keep: Any) -> None:
        self.cluster, self.ref, self.keep = cluster, ref, keep
        self.lock = threading.Lock()
        self.streams: dict[tuple[str, int], threading.Thread] = {}
        self.queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()

    def write(self, line: str) -> None:
        if self.keep(line):
            self.queue.put(line)

    def lines(self) -> Iterator[str]:
        """Every stream's lines as they come, until the job ends and the streams drain."""

        failed: list[BaseException] = []

        def run() -> None:
            try:
                self.run()
            except BaseException as err:  # raised below, in the caller's thread
                failed.append(err)
            finally:
                self.queue.put(None)

        threading.Thread(target=run, daemon=True).start()
        while (line := self.queue.get()) is not None:
            yield line
        if failed:
            raise failed[0]

    def stream(self, key: tuple[str, int], pod: str) -> None:
        try:
            resp = self.cluster.log(self.ref, pod, follow=True)
        except (BackendError, _NotFound):
            with self.lock:  # not started yet, or gone: the next poll tries again
                self.streams.pop(key, None)
            return
        rest = b""
        try:
            for chunk in resp.stream(64 * 1024):
                lines = (rest + chunk).split(b"\n")
                rest = lines.pop()
                for line in lines:
                    self.write(line.decode("utf-8", "replace"))
        except Exception:  # the pod went away mid-stream (cleanPodPolicy, cancel)
            pass
        finally:
            resp.release_conn()
        if rest:
            self.write(rest.decode("utf-8", "replace"))

    def run(self) -> None:
        while True:
            job = self.cluster.job(self.ref)
            if job is None and not self.streams:
                self.queue.put(Note(f"{self.ref.where} is gone: no logs to follow"))
            current = job_status(self.ref, job, [])
            for pod in self.cluster.pods(self.ref) if job is not None else []:
                cs = _training(pod) or {}
                state = cs.get("state") or {}
                if not (state.get("running") or state.get("terminated")):
                    continue
                key = (
                    pod["metadata"].get("uid") or pod["metadata"]["name"],
                    cs.get("restartCount") or 0,
                )
                with self.lock:
                    if key in self.streams:
                        continue
                    thread = threading.Thread(
                        target=self.stream, args=(key, pod["metadata"]["name"]), daemon=True
                    )
                    self.streams[key] = thread
                thread.start()
            if job is None or current.finished:
                break
            time.sleep(POLL_SECONDS)
        deadline = time.monotonic() + DRAIN_SECONDS
        with self.lock:
            threads = list(self.streams.values())
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
