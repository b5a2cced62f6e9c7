"""The Kubernetes Secret that carries a job's tokens to its pods (secretKeyRef by name).

Created or updated through the API client at submit time, from the submit host's values:
never through Helm values, a ConfigMap, a file or `kubectl --from-literal` argv. The
kubernetes package is imported here only, and only when a job has tokens to send.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from hyperpod_launcher.util.errors import BackendError

INSTALL_HINT = "pip install 'hyperpod-launcher[k8s]' (the kubernetes Python client)"


def _core_api(context: str | None) -> Any:
    try:
        from kubernetes import client, config
    except ImportError:
        raise BackendError(
            f"the job has tokens to store in a Kubernetes Secret, which needs {INSTALL_HINT}"
        ) from None
    try:
        config.load_kube_config(context=context)
    except config.ConfigException as err:
        if context is not None:
            raise BackendError(f"kube context {context!r}: {err}") from None
        try:
            config.load_incluster_config()
        except config.ConfigException:
            raise BackendError(f"no Kubernetes configuration: {err}") from None
    return client.CoreV1Api()


def _reason(err: Exception) -> str:
    status = getattr(err, "status", None)
    reason = getattr(err, "reason", None) or type(err).__name__
    return f"HTTP {status} {reason}" if status else str(reason)


def apply(
    namespace: str,
    name: str,
    data: Mapping[str, str],
    labels: Mapping[str, str],
    context: str | None,
) -> str:
    """Create the Secret, or replace its data when it exists; return 'created' or 'updated'."""
    from kubernetes.client import V1ObjectMeta, V1Secret
    from kubernetes.client.rest import ApiException

    api = _core_api(context)
    body = V1Secret(
        api_version="v1",
        kind="Secret",
        metadata=V1ObjectMeta(name=name, namespace=namespace, labels=dict(labels)),
        type="Opaque",
        string_data=dict(data),
    )
    try:
        api.create_namespaced_secret(namespace, body)
        return "created"
    except ApiException as err:
        if err.status != 409:
            raise BackendError(
                f"creating Secret {namespace}/{name} failed: {_reason(err)}"
            ) from None
    except Exception as err:  # connection errors from urllib3
        raise BackendError(f"creating Secret {namespace}/{name} failed: {_reason(err)}") from None
    try:
        api.replace_namespaced_secret(name, namespace, body)
    except Exception as err:
        raise BackendError(f"updating Secret {namespace}/{name} failed: {_reason(err)}") from None
    return "updated"


def delete(namespace: str, name: str, context: str | None) -> None:
    """Best effort: remove a Secret this launch created when the install failed."""
    with contextlib.suppress(Exception):
        _core_api(context).delete_namespaced_secret(name, namespace)
