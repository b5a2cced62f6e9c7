"""The masking relay of a detached job: `python -m hyperpod_launcher.util.log_mask [FOLDER]`
appends what it reads on stdin to its stdout (the job's log) with the launch's secret values
replaced by ****; once the job's output ends, it masks the files under FOLDER too.

A detached job outlives the launcher, so its output cannot pass through the launcher's own
masking: this small process sits between the job and its log until the job's output ends.
The values come in the environment (MASK_VALUES_ENV, a JSON list), never in argv.
FOLDER holds torchrun's per-rank copies of the same output (its `--log-dir`), which torchrun
writes itself: they are masked in place when the job has ended (`mask_files`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

MASK_VALUES_ENV = "HPL_MASK_VALUES"


def start(
    log: BinaryIO, values: Iterable[str], then_mask: str | None = None
) -> subprocess.Popen[bytes]:
    """The relay, writing to the open `log`; the job's output goes to its stdin. Once that
    output ends, the files under the folder `then_mask` are masked too."""
    package_root = str(Path(__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, MASK_VALUES_ENV: json.dumps(sorted(set(values)))}
    return subprocess.Popen(
        [sys.executable, "-m", "hyperpod_launcher.util.log_mask", *filter(None, [then_mask])],
        env=env,
        stdin=subprocess.PIPE,
        stdout=log,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C at the launcher's terminal leaves it running
    )


def mask_files(folder: str | Path, values: Iterable[str]) -> None:
    """Mask every file under `folder` in place (replaced by rename, line by line, so a large
    log is never read whole); files without a secret value are left untouched."""
    from hyperpod_launcher.util.masking import mask

    values = list(values)
    for path in sorted(Path(folder).rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        try:
            _mask_file(path, lambda text: mask(text, values))
        except OSError:
            continue  # unreadable or vanished: nothing of it is shown by the launcher


def _mask_file(path: Path, masked: Callable[[str], str]) -> None:
    with path.open("rb") as source:
        if not any(masked(_text(raw)) != _text(raw) for raw in source):
            return
        source.seek(0)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "wb") as out:
                for raw in source:
                    out.write(masked(_text(raw)).encode(errors="surrogateescape"))
            os.chmod(tmp, path.stat().st_mode & 0o777)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _text(raw: bytes) -> str:
    return raw.decode(errors="surrogateescape")  # bytes that are not UTF-8 come back as they were


def main() -> None:
    from hyperpod_launcher.util.masking import mask

    values = json.loads(os.environ.pop(MASK_VALUES_ENV, "[]"))
    out = sys.stdout.buffer
    for raw in sys.stdin.buffer:
        out.write(mask(raw.decode(errors="replace"), values).encode())
        out.flush()
    for folder in sys.argv[1:]:
        mask_files(folder, values)


if __name__ == "__main__":
    main()
