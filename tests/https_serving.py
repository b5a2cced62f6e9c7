"""HTTPS servers on loopback for tests: a throwaway self-signed certificate (openssl) that git
trusts through GIT_SSL_CAINFO, and a ThreadingHTTPServer wrapped in TLS."""

from __future__ import annotations

import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

HOSTS = ("127.0.0.1", "127.0.0.2")  # both loopback on Linux: two hosts for git


def certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate valid for every address in HOSTS: (cert, key)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    if not cert.exists():
        names = ",".join(f"IP:{h}" for h in HOSTS)
        request = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        subject = ["-subj", "/CN=hpl-test", "-addext", f"subjectAltName={names}"]
        subprocess.run(
            ["openssl", *request, *subject, "-keyout", str(key), "-out", str(cert)],
            check=True,
            capture_output=True,
        )
    return cert, key


@contextmanager
def https_server(
    handler: type[BaseHTTPRequestHandler], host: str, cert: Path, key: Path
) -> Iterator[str]:
    """Serve `handler` over https on `host`; yields the base URL (https://host:port)."""
    httpd = ThreadingHTTPServer((host, 0), handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://{host}:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def files_handler(root: Path) -> type[BaseHTTPRequestHandler]:
    """Serves the files under `root` (git's dumb HTTP protocol reads a bare repo this way)."""

    class Files(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args: Any) -> None:
            pass

    return Files
