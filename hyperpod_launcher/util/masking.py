"""One masking rule for everything the launcher prints or writes: a secret value becomes ****.

The launcher knows its secret values from three places: the command line's overrides of
secret keys (`is_secret_key`), this environment's variables with secret names (`HF_TOKEN`,
`AWS_SECRET_ACCESS_KEY`, ...: a launch script may reference them as `${oc.env:...}`), and the
launch's own `Secrets` once the job is built (`remember`). `masked_output` applies the rule to
everything written to stdout and stderr (Hydra's `--cfg`, `--info` and error report, tracebacks
included); files go through `mask` where they are written.
"""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import TextIO

MASK = "****"
# TOKENIZER_* names a tokenizer, not a token
SECRET_ENV = re.compile(
    r"TOKEN(?!IZER)|SECRET|PASSW(OR)?D|API_?KEY|ACCESS_KEY|CREDENTIAL", re.IGNORECASE
)
HF_TOKEN_ENV = "HF_TOKEN"
# The recipe key that carries a Hugging Face token, and how the written recipe refers to it.
RECIPE_SECRETS = {("model", "hf_access_token"): HF_TOKEN_ENV}
# user:password@ in a URL, or a user name that is a token (GitHub, GitLab, Hugging Face...).
URL_SECRET = re.compile(
    r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^/@]*:[^/@]*|(?:ghp|gho|ghu|ghs|ghr|github_pat|glpat|hf)_"
    r"[^/@]*|glpat-[^/@]*|x-access-token[^/@]*|oauth2[^/@]*)@"
)

# Shorter values are too likely to be ordinary text ("1", "true") to be replaced everywhere.
MIN_SECRET = 4
_ORDINARY = frozenset({"true", "false", "none", "null"})
_RECIPE_SECRET_LEAVES = frozenset(path[-1] for path in RECIPE_SECRETS)
_known: set[str] = set()


def is_secret_key(dotted: str) -> bool:
    """A config key whose value is a secret: git.token, a recipe's hf_access_token, and an
    env_vars entry whose name says it holds a secret (SECRET_ENV)."""
    key = dotted.lstrip("+~")
    parent, _, leaf = key.rpartition(".")
    if key == "git.token" or leaf in _RECIPE_SECRET_LEAVES:
        return True
    return parent.endswith("env_vars") and bool(SECRET_ENV.search(leaf))


def _variants(value: str) -> Iterator[str]:
    """The value as given and as a parser or an error message may show it: unquoted, and
    the items of a list or mapping."""
    value = value.strip()
    yield value
    unquoted = value.strip("'\"")
    yield unquoted
    if unquoted[:1] in "[{" or "," in unquoted:
        for part in re.split(r"[\[\]{},:]", unquoted):
            yield part.strip().strip("'\"")


def values_in_overrides(overrides: Iterable[str]) -> set[str]:
    """The secret values a command line gives (`git.token=...`, `env_vars.HF_TOKEN=...`)."""
    found: set[str] = set()
    for arg in overrides:
        key, sep, value = arg.partition("=")
        reference = re.fullmatch(r"\$\{[^{}]*\}", value.strip().strip("'\""))
        if sep and is_secret_key(key) and not reference:  # `${oc.env:X}` names, holds nothing
            found.update(_variants(value))
        elif sep and key.lstrip("+~") == "git.repo_url_or_path":
            found.update(_url_secret(value.strip("'\"")))
    return found


def _url_secret(url: str) -> set[str]:
    """The password (or token user name) in a URL's user:password@ part."""
    match = URL_SECRET.match(url)
    if not match:
        return set()
    userinfo = match.group(0).split("://", 1)[1][:-1]
    user, _, password = userinfo.partition(":")
    return {password} if password else {user}


def values_in_environment(environ: Mapping[str, str] | None = None) -> set[str]:
    environ = os.environ if environ is None else environ
    return {value for name, value in environ.items() if SECRET_ENV.search(name)}


def remember(values: Iterable[str | None]) -> None:
    """Mask these values too from now on, in this process."""
    _known.update(v for v in values if v is not None and _maskable(v))


def _maskable(value: str | None) -> bool:
    return value is not None and len(value) >= MIN_SECRET and value.lower() not in _ORDINARY


def forget_all() -> None:
    _known.clear()


def known() -> frozenset[str]:
    return frozenset(_known)


def mask(text: str, values: Iterable[str] = ()) -> str:
    """`text` with every known secret value (and `values`) replaced by ****."""
    every = _known.union(v for v in values if _maskable(v))
    for value in sorted(every, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    return text


class MaskingStream(io.TextIOBase):
    """A text stream that masks what it writes, a line at a time (so a value split across
    two writes is still seen whole)."""

    def __init__(self, target: TextIO) -> None:
        self.target = target
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        if "\n" in self._pending:
            done, _, self._pending = self._pending.rpartition("\n")
            self.target.write(mask(done + "\n"))
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self.target.write(mask(self._pending))
            self._pending = ""
        self.target.flush()

    def isatty(self) -> bool:
        return self.target.isatty()

    def fileno(self) -> int:
        return self.target.fileno()

    # io's stubs declare `encoding` a plain attribute: a property overrides it with a setter.
    @property
    def encoding(self) -> str:
        return getattr(self.target, "encoding", "utf-8")

    @encoding.setter
    def encoding(self, value: str) -> None:
        raise AttributeError("a masking stream's encoding is its target's")


@contextmanager
def masked_output(overrides: Iterable[str] = ()) -> Iterator[None]:
    """Mask stdout and stderr while the block runs; the values come from `overrides`, this
    environment and whatever `remember` adds meanwhile."""
    remember(values_in_overrides(overrides) | values_in_environment())
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = MaskingStream(streams[0]), MaskingStream(streams[1])
    try:
        yield
    finally:
        for wrapper in (sys.stdout, sys.stderr):
            with suppress(BrokenPipeError, ValueError):
                wrapper.flush()
        sys.stdout, sys.stderr = streams
