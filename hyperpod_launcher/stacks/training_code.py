"""The training code a recipe was written for, as the recipe names it.

A stack's shared recipe base names its code as metadata: `run.code_repo`, `run.code_version`
(the release its keys follow) and `run.code_commit` (that release's commit). A launch whose
code is that repository and names no `git.commit` or `git.branch` checks out the commit; the
per-node script puts the checkout's package ahead of the image's (both stacks' packages are
pure Python, so `PYTHONPATH=<checkout>/src` suffices) and says in one line when the checkout
has no such package.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Pin:
    repo: str
    version: str | None
    commit: str
    package: str | None

    def is_repo(self, location: str | None) -> bool:
        def norm(url: str) -> str:
            return url.rstrip("/").removesuffix(".git").lower()

        return location is not None and norm(location) == norm(self.repo)


def pin_of(recipe: Mapping[str, Any], package: str | None) -> Pin | None:
    """The code the recipe pins (its run.code_* keys); None when it names no commit.
    `package`: the stack's package folder in that code (Stack.package)."""
    run = recipe.get("run")
    if not isinstance(run, Mapping) or not run.get("code_repo") or not run.get("code_commit"):
        return None
    version = run.get("code_version")
    return Pin(
        str(run["code_repo"]),
        None if version is None else str(version),
        str(run["code_commit"]),
        package,
    )
