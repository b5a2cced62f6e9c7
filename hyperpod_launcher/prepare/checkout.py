"""Check out the job's code once per launch, on the submit host, pinned to one commit."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

from hyperpod_launcher.spec.job import CodeSource, Secrets
from hyperpod_launcher.util.errors import BackendError

# Reads the token from the environment at call time, so it is never in argv or .git/config,
# and answers only a `get` for the repository's own scheme and host: after a redirect git
# asks for the new host's credentials, and gets none.
_TOKEN_HELPER = (
    '!f() { test "$1" = get || return 0; p=; h=; while IFS= read -r line; do case "$line" in '
    'protocol=*) p="${line#protocol=}";; host=*) h="${line#host=}";; esac; done; '
    'if [ "$p" = https ] && [ "$h" = "$HPL_GIT_HOST" ]; then '
    'echo username=x-access-token; echo "password=$HPL_GIT_TOKEN"; fi; }; f'
)


def token_host(location: str) -> str | None:
    """The host[:port] a token may go to: the repository's, over https only."""
    parts = urlsplit(location)
    if parts.scheme.lower() != "https" or not parts.hostname:
        return None
    return parts.netloc.rpartition("@")[2].lower()


def _git(
    what: str, args: list[str], env: dict[str, str], secrets: Secrets, cwd: str | None = None
) -> str:
    proc = subprocess.run(
        ["git", *args], env=env, cwd=cwd, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["(no message)"]
        raise BackendError(f"git {what} failed: {secrets.mask(lines[-1])}")
    return proc.stdout.strip()


def checkout(code: CodeSource, secrets: Secrets) -> str | None:
    """Fetch the code into code.checkout_dir; return the commit it is pinned to (git only)."""
    if not code.location or not code.checkout_dir:
        return None
    dest = Path(code.checkout_dir)
    if dest.exists():
        raise BackendError(f"code checkout {dest} already exists; refusing to overwrite it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    source = Path(code.location)
    if code.is_local and not (source / ".git").exists():
        shutil.copytree(source, dest, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
        return None
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    args = ["clone", "--quiet"]
    if secrets.git_token:
        host = token_host(code.location)
        if host is None:
            raise BackendError(f"git.token is sent over https only, not to {code.location}")
        env.update(HPL_GIT_TOKEN=secrets.git_token, HPL_GIT_HOST=host)
        helper = f"credential.https://{host}.helper={_TOKEN_HELPER}"
        args = ["-c", "credential.helper=", "-c", helper, *args]
    if code.branch and not code.commit:
        args += ["--branch", code.branch]
    try:
        _git(f"clone of {code.location}", [*args, "--", code.location, str(dest)], env, secrets)
        if code.commit:
            checkout_args = ["checkout", "--quiet", "--detach", code.commit]
            _git(f"checkout of {code.commit}", checkout_args, env, secrets, cwd=str(dest))
        return _git("rev-parse", ["rev-parse", "HEAD"], env, secrets, cwd=str(dest))
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
