"""The git token goes to the repository's own host over https, and nowhere else.

Real git clones from real HTTPS servers on loopback (a self-signed certificate git trusts
through GIT_SSL_CAINFO): one serves a bare repository behind Basic auth, one redirects to
another loopback host that asks for credentials too.
"""

from __future__ import annotations

import base64
import subprocess
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from hyperpod_launcher.prepare import checkout as code
from hyperpod_launcher.spec.code_source import code_source
from hyperpod_launcher.spec.job import CodeSource, Secrets
from hyperpod_launcher.util.errors import BackendError, UserError
from tests.conftest import require_tool
from tests.https_serving import HOSTS, certificate, https_server

TOKEN = "ghp_credential_canary_7531"
BASIC = "Basic " + base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()


def _bare_repo(tmp_path: Path) -> Path:
    work, served = tmp_path / "work", tmp_path / "srv"
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main", str(work)], check=True)
    (work / "train.py").write_text("print('hi')\n")
    subprocess.run([*git, "-C", str(work), "add", "."], check=True)
    subprocess.run([*git, "-C", str(work), "commit", "-qm", "one"], check=True)
    served.mkdir()
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(served / "r.git")], check=True)
    subprocess.run(["git", "-C", str(served / "r.git"), "update-server-info"], check=True)
    return served


def _guarded(root: Path, seen: list[str | None]) -> type[BaseHTTPRequestHandler]:
    """Serves `root` (git's dumb HTTP protocol) to the token only; records each
    Authorization header it was sent."""

    class Guarded(SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            if self.headers.get("Authorization") != BASIC:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="repo"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            super().do_GET()

    return Guarded


def _redirect(to: str) -> type[BaseHTTPRequestHandler]:
    class Redirect(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", to + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Redirect


@pytest.fixture
def trusted_cert(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    require_tool("git")
    require_tool("openssl")
    cert, key = certificate(tmp_path)
    monkeypatch.setenv("GIT_SSL_CAINFO", str(cert))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("HOME", str(tmp_path))  # no user-level credential helper
    return cert, key


def test_the_repository_host_gets_the_token_and_the_clone_works(
    tmp_path: Path, trusted_cert: tuple[Path, Path]
) -> None:
    seen: list[str | None] = []
    with https_server(_guarded(_bare_repo(tmp_path), seen), HOSTS[0], *trusted_cert) as url:
        source = CodeSource(location=f"{url}/r.git", checkout_dir=str(tmp_path / "co"))
        commit = code.checkout(source, Secrets(git_token=TOKEN))
    assert commit and len(commit) == 40
    assert (tmp_path / "co" / "train.py").is_file()
    assert BASIC in seen  # the token did reach its own host
    assert TOKEN not in (tmp_path / "co" / ".git" / "config").read_text()


def test_a_redirect_to_another_host_gets_no_token(
    tmp_path: Path, trusted_cert: tuple[Path, Path]
) -> None:
    seen_elsewhere: list[str | None] = []
    guarded = _guarded(_bare_repo(tmp_path), seen_elsewhere)
    with (
        https_server(guarded, HOSTS[1], *trusted_cert) as other,
        https_server(_redirect(other), HOSTS[0], *trusted_cert) as url,
    ):
        source = CodeSource(location=f"{url}/r.git", checkout_dir=str(tmp_path / "co"))
        with pytest.raises(BackendError) as failed:
            code.checkout(source, Secrets(git_token=TOKEN))
    assert seen_elsewhere, "git did follow the redirect and was asked for credentials"
    assert all(header is None for header in seen_elsewhere), seen_elsewhere
    assert TOKEN not in str(failed.value)
    assert not (tmp_path / "co").exists()


def test_a_token_is_never_sent_over_plain_http(tmp_path: Path) -> None:
    git = {"repo_url_or_path": "http://git.example.com/r.git", "token": TOKEN}
    with pytest.raises(UserError, match="only sent over https"):
        code_source(git, str(tmp_path), "launch")
    plain = CodeSource(location="http://127.0.0.1:9/r.git", checkout_dir=str(tmp_path / "co"))
    with pytest.raises(BackendError, match="https only"):
        code.checkout(plain, Secrets(git_token=TOKEN))
