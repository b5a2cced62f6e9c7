"""Where a job's code comes from: `git.repo_url_or_path` checked, as a CodeSource.

A remote location must be one git can clone (a built-in transport, or a `git-remote-<scheme>`
program on PATH); a local path is checked to exist later, with the launch's other paths on
this host.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Mapping
from typing import Any

from hyperpod_launcher.spec.job import CodeSource
from hyperpod_launcher.util.errors import UserError
from hyperpod_launcher.util.masking import URL_SECRET

GIT_SCHEMES = ("ssh", "git", "http", "https", "ftp", "ftps", "git+ssh", "ssh+git")
SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:")
URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)$")
URL_SECRET_MESSAGE = (
    "git.repo_url_or_path: the URL carries a password or token; remove it and set git.token "
    "(it reaches the job through the backend's secret channel, never a file or argv)"
)


def is_remote(location: str) -> bool:
    return "://" in location or "::" in location or bool(SCP_LIKE.match(location))


def _url_problem(location: str) -> str | None:
    """Why git cannot clone this remote location, or None. A scheme git has no transport
    for works only through a `git-remote-<scheme>` program on the submit host's PATH."""
    if any(c.isspace() or ord(c) < 32 for c in location):
        return "must not contain whitespace or control characters (write a space as %20)"
    helper, sep, _ = location.partition("::")
    if sep and "://" not in helper:  # <transport>::<address>
        scheme, rest = helper, "x"
    elif SCP_LIKE.match(location):
        return None
    else:
        match = URL.match(location)
        if match is None:
            return "expected scheme://host/path, user@host:path or an absolute local path"
        scheme, rest = match.group("scheme").lower(), match.group("rest")
    if scheme in GIT_SCHEMES:
        host = rest.split("/", 1)[0].rpartition("@")[2]
        return None if host else "names no host"
    if shutil.which(f"git-remote-{scheme}"):
        return None
    return (
        f"git has no transport for '{scheme}' (built in: {', '.join(GIT_SCHEMES)}, file://; "
        f"other schemes need git-remote-{scheme} on PATH)"
    )


def _is_https(location: str) -> bool:
    match = URL.match(location)
    return match is not None and match.group("scheme").lower() == "https"


def code_source(git: Mapping[str, Any], job_dir: str, launch_id: str) -> CodeSource:
    location = git.get("repo_url_or_path")
    if not location:
        return CodeSource()
    if location.startswith("file://"):
        location = location[len("file://") :]
    if URL_SECRET.match(location):  # before anything could print or write the URL
        raise UserError(URL_SECRET_MESSAGE)
    if is_remote(location):
        problem = _url_problem(location)
        if problem:
            shown = re.sub(r"//[^/@]*@", "//****@", location)  # credentials in the URL
            raise UserError(f"git.repo_url_or_path={shown!r}: {problem}")
    if git.get("token") and is_remote(location) and not _is_https(location):
        raise UserError(
            "git.token is set but git.repo_url_or_path is not an https:// URL; a token is "
            "only sent over https (ssh and other transports use their own credentials)"
        )
    for key in ("branch", "commit"):
        value = git.get(key)
        if value is not None and (not value or any(c.isspace() for c in value)):
            raise UserError(f"git.{key}: {value!r} is not a valid git {key} name")
    return CodeSource(
        location=location,
        branch=git.get("branch"),
        commit=git.get("commit"),
        checkout_dir=os.path.join(job_dir, "code", launch_id),
    )
