"""Errors with an exit code and a one-line message: the user-facing contract."""

from __future__ import annotations

from collections.abc import Iterable


class LauncherError(Exception):
    """An error reported to the user as one line, without a traceback."""

    exit_code = 1


class UserError(LauncherError):
    """Bad input: wrong key, value or combination. Nothing was written or submitted."""

    exit_code = 2


class BackendError(LauncherError):
    """The backend (sbatch, helm, AWS, torchrun) refused or failed."""

    exit_code = 1


def did_you_mean(word: str, candidates: Iterable[str], n: int = 3) -> str:
    """A ' (did you mean ...?)' suffix naming the nearest candidates, or ''."""
    import difflib  # only on the error path

    matches = difflib.get_close_matches(word, list(candidates), n=n, cutoff=0.6)
    if not matches:
        return ""
    return " (did you mean " + " or ".join(repr(m) for m in matches) + "?)"
