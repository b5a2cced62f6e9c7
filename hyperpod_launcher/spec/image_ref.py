"""Container image references, checked before anything is written: the OCI/Docker reference
grammar (`[registry[:port]/]name[:tag][@algorithm:hex]`), enroot/pyxis's
`[user@][registry#]name[:tag]` (optionally behind `docker://`), or a squashfs file (`*.sqsh`)."""

from __future__ import annotations

import re

from hyperpod_launcher.util.errors import UserError

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|-+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_REMOTE_NAME = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_SUFFIX = rf"(?::{_TAG})?(?:@{_DIGEST})?"

REFERENCE = re.compile(rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<name>{_REMOTE_NAME}){_SUFFIX}$")
PYXIS = re.compile(
    rf"^(?:(?:docker|dockerd|podman)://)?(?:[A-Za-z0-9._-]+@)?(?:{_DOMAIN}#)?"
    rf"(?P<name>{_REMOTE_NAME}){_SUFFIX}$"
)
MAX_NAME = 255

FORMS = (
    "[registry/]name[:tag][@digest] with a lowercase name and a tag of letters, digits, "
    "'_', '.' or '-' (pyxis: registry#name[:tag]; or a .sqsh file)"
)


def _docker_ok(value: str) -> bool:
    match = REFERENCE.match(value)
    if not match:
        return False
    domain = match.group("domain")
    # Docker reads the first component as a registry only with a '.' or ':' or as localhost.
    registry = domain and ("." in domain or ":" in domain or domain == "localhost")
    if domain and not registry and not re.fullmatch(_PATH_COMPONENT, domain):
        return False
    name = f"{domain}/{match.group('name')}" if domain else match.group("name")
    return len(name) <= MAX_NAME


def problem(value: str) -> str | None:
    """Why `value` is not an image reference, or None when it is one."""
    if value.endswith(".sqsh") and "\n" not in value:
        return None
    if "#" in value or "://" in value:
        return None if PYXIS.match(value) else "not a pyxis image reference"
    if _docker_ok(value):
        return None
    if any(c.isspace() for c in value):
        return "an image reference holds no whitespace"
    return "not an image reference"


def check(value: str, key: str = "container") -> str:
    """`value` when it is a valid image reference; else one line naming the key and forms."""
    why = problem(value)
    if why:
        raise UserError(f"{key}={value!r}: {why}; expected {FORMS}")
    return value
