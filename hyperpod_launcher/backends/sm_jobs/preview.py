"""Dry run of an unmodified launch.py: `python preview.py <launch.py> <outcome.json>`.

botocore event hooks answer every AWS call locally and stop at CreateTrainingJob, whose
request body is written to the outcome file as {"CreateTrainingJob": body}; when launch.py
fails first, the file holds its result ({"error": ...}). Nothing leaves this process: sockets
refuse to connect, and the SDK's git clone of the training code (unless launch.py routed it to
the launcher's checkout) clones a local empty repository instead; the files the SDK copies out
of that clone are empty placeholders. Run as a separate process so the launcher itself never
imports the SDK.
"""

from __future__ import annotations

import contextlib
import json
import os
import runpy
import shutil
import socket
import subprocess
import sys
import types
from pathlib import Path
from typing import Any, cast

ROLE_PLACEHOLDER = "arn:aws:iam::000000000000:role/resolved-by-get-execution-role-at-submit"
# Minimal answers for calls the SDK makes before CreateTrainingJob (uploads, identity).
ANSWERS = {
    "CreateMultipartUpload": {"UploadId": "dry-run"},
    "UploadPart": {"ETag": '"dry-run"'},
    "GetCallerIdentity": {
        "Account": "000000000000",
        "Arn": "arn:aws:iam::000000000000:user/dry-run",
        "UserId": "dry-run",
    },
}


CAPTURED: list[object] = []


class Captured(BaseException):
    """Raised at CreateTrainingJob to stop launch.py there. The SDK's telemetry wrapper may
    swallow it (a `return` in a `finally`), so what counts is that CAPTURED holds the body."""


def _no_network(*_args: object, **_kwargs: object) -> None:
    raise OSError("dry run: network access is disabled")


def _answer(model, params, **_kwargs):  # botocore before-call hook
    from botocore.awsrequest import AWSResponse

    if model.name == "CreateTrainingJob":
        body = params.get("body") or b"{}"
        CAPTURED.append(json.loads(body.decode() if isinstance(body, bytes) else body))
        raise Captured("CreateTrainingJob")
    if CAPTURED:  # nothing after CreateTrainingJob may reach AWS either
        raise Captured(model.name)
    return AWSResponse(params.get("url", ""), 200, {}, None), dict(ANSWERS.get(model.name, {}))


def _install_hooks() -> None:
    import botocore.session

    original = botocore.session.Session.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.register("before-call", _answer)

    botocore.session.Session.__init__ = init
    try:
        import sagemaker

        sagemaker.get_execution_role = lambda *a, **k: ROLE_PLACEHOLDER
    except ImportError:
        pass  # launch.py reports the missing SDK itself


def _routed(url: str) -> bool:
    """launch.py sent this URL to the launcher's checkout (url.<checkout>.insteadOf)."""
    count = int(os.environ.get("GIT_CONFIG_COUNT", "0"))
    return any(
        os.environ.get(f"GIT_CONFIG_KEY_{i}", "").endswith(".insteadOf")
        and os.environ.get(f"GIT_CONFIG_VALUE_{i}") == url
        for i in range(count)
    )


def _serve_clones_locally(scratch: Path) -> None:
    try:
        from sagemaker.pytorch import estimator
    except ImportError:
        return  # launch.py reports the missing SDK itself
    empty = scratch / "empty.git"
    subprocess.run(["git", "init", "-q", "--bare", str(empty)], check=True, capture_output=True)
    clones: list[str] = []
    original_clone = estimator._run_clone_command

    def clone(repo_url: str, dest_dir: str) -> None:
        if _routed(repo_url):
            original_clone(repo_url, dest_dir)
            return
        subprocess.run(["git", "clone", "-q", str(empty), str(dest_dir)], check=True)
        clones.append(str(dest_dir))

    def placeholder(path: str, folder: bool) -> None:
        if os.path.exists(path) or not any(str(path).startswith(c) for c in clones):
            return
        if folder:
            os.makedirs(os.path.join(path), exist_ok=True)
            Path(path, ".placeholder").write_text("")
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            Path(path).write_text("# dry run: a placeholder for the training code\n")

    def copyfile(src: str, dst: str, *args: object, **kwargs: object) -> object:
        placeholder(src, folder=False)
        return shutil.copyfile(src, dst, *args, **kwargs)  # type: ignore[arg-type]

    def copytree(src: str, dst: str, *args: object, **kwargs: object) -> object:
        placeholder(src, folder=True)
        return shutil.copytree(src, dst, *args, **kwargs)  # type: ignore[arg-type]

    estimator._run_clone_command = clone
    names = {n: getattr(shutil, n) for n in dir(shutil) if not n.startswith("__")}
    cast(Any, estimator).shutil = types.SimpleNamespace(  # a stand-in for the module
        **{**names, "copyfile": copyfile, "copytree": copytree}
    )


def main(argv: list[str]) -> int:
    launch, outcome = argv
    socket.socket.connect = _no_network  # type: ignore[method-assign]
    socket.create_connection = _no_network  # type: ignore[assignment]
    _install_hooks()
    _serve_clones_locally(Path(outcome).parent)
    sys.argv = [launch, "--result", outcome]  # launch.py writes its error there
    # launch.py stops at the call (or, if the SDK swallowed Captured, right after it).
    with contextlib.suppress(Captured, SystemExit):
        runpy.run_path(launch, run_name="__main__")
    if not CAPTURED:
        print("launch.py ended without CreateTrainingJob", file=sys.stderr)
        return 1
    Path(outcome).write_text(json.dumps({"CreateTrainingJob": CAPTURED[0]}), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
