"""Stand-ins at the boundaries nothing real can reach here: a recording `helm` on PATH and
a recording Kubernetes API server on 127.0.0.1 (for the Secret the launcher creates).

Both record exactly what was sent. The API stand-in answers the few Secret calls the
launcher makes (create, replace on 409, delete) the way the API server does, nothing else.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

FAKE_HELM = """#!{python}
# Recording stand-in for helm: logs argv, environment and the values an install was given;
# answers as told by HPL_FAKE_HELM_*.
import json, os, sys
values = None
if sys.argv[1:2] == ["install"] and os.path.isfile(os.path.join(sys.argv[3], "values.yaml")):
    values = open(os.path.join(sys.argv[3], "values.yaml")).read()
with open(os.environ["HPL_FAKE_HELM_LOG"], "a") as log:
    call = {{"argv": sys.argv[1:], "env": dict(os.environ), "values": values}}
    log.write(json.dumps(call) + "\\n")
sys.stdout.write(os.environ.get("HPL_FAKE_HELM_STDOUT", ""))
sys.stderr.write(os.environ.get("HPL_FAKE_HELM_STDERR", ""))
sys.exit(int(os.environ.get("HPL_FAKE_HELM_EXIT", "0")))
"""


@dataclass
class FakeHelm:
    bin_dir: Path
    log: Path

    def env(self, exit_code: int = 0, stdout: str = "", stderr: str = "") -> dict[str, str]:
        return {
            "PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "HPL_FAKE_HELM_LOG": str(self.log),
            "HPL_FAKE_HELM_EXIT": str(exit_code),
            "HPL_FAKE_HELM_STDOUT": stdout,
            "HPL_FAKE_HELM_STDERR": stderr,
            # The stand-ins listen on loopback: never send that through a proxy.
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }

    def calls(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


def fake_helm(tmp: Path) -> FakeHelm:
    bin_dir = tmp / "fake-bin"
    bin_dir.mkdir()
    helm = bin_dir / "helm"
    helm.write_text(FAKE_HELM.format(python=sys.executable))
    helm.chmod(0o755)
    return FakeHelm(bin_dir, tmp / "helm-calls.jsonl")


@dataclass
class ApiServer:
    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    existing: set[str] = field(default_factory=set)  # Secret names that answer 409 to create


class JsonHandler(BaseHTTPRequestHandler):
    """A quiet request handler that answers with JSON: the base of the API stand-ins."""

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _handler(server: ApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        def _record(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            entry = {
                "method": self.command,
                "path": self.path,
                "authorization": self.headers.get("Authorization"),
                "body": json.loads(raw) if raw else None,
            }
            server.requests.append(entry)
            return entry

        def do_POST(self) -> None:
            entry = self._record()
            name = (entry["body"] or {}).get("metadata", {}).get("name")
            if name in server.existing:
                self._reply(
                    409,
                    {
                        "kind": "Status",
                        "status": "Failure",
                        "reason": "AlreadyExists",
                        "code": 409,
                        "message": f'secrets "{name}" already exists',
                    },
                )
                return
            server.existing.add(name)
            self._reply(201, entry["body"])

        def do_PUT(self) -> None:
            self._reply(200, self._record()["body"])

        def do_DELETE(self) -> None:
            self._record()
            self._reply(200, {"kind": "Status", "status": "Success", "code": 200})

        def do_GET(self) -> None:
            self._record()
            self._reply(404, {"kind": "Status", "status": "Failure", "code": 404})

    return Handler


@contextmanager
def serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextmanager
def api_server() -> Iterator[ApiServer]:
    state = ApiServer(url="")
    with serve(_handler(state)) as httpd:
        state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
        yield state


def kubeconfig(path: Path, contexts: dict[str, str], current: str) -> Path:
    """A kubeconfig with one cluster, user (bearer token) and context per server URL."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": n, "cluster": {"server": url}} for n, url in contexts.items()],
        "users": [{"name": n, "user": {"token": f"token-for-{n}"}} for n in contexts],
        "contexts": [
            {"name": n, "context": {"cluster": n, "user": n, "namespace": "default"}}
            for n in contexts
        ],
        "current-context": current,
    }
    path.write_text(yaml.safe_dump(config))
    return path
