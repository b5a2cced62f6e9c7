"""The job folder: atomic writes that never destroy an earlier launch's files.

`<base_results_dir>/<run.name>/` holds the latest launch's artifacts under the names users
expect. Before a relaunch replaces a file, the earlier version is hard-linked into
`launches/<its launch id>/`, so nothing is lost; running jobs keep their open files because
files are replaced by rename, never rewritten in place. Logs carry the job id in their name.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from hyperpod_launcher import masking
from hyperpod_launcher.records import ARCHIVE, RECORD, JobRecord, read_record


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class JobDir:
    def __init__(self, path: str | Path, launch_id: str) -> None:
        self.path = Path(path)
        self.launch_id = launch_id
        previous = read_record(self.path)
        self._previous_launch = previous.launch_id if previous else None

    def _archive(self, target: Path, relpath: str) -> None:
        """Keep the earlier launch's version of a file before it is replaced."""
        if not target.exists() or not self._previous_launch:
            return
        if self._previous_launch == self.launch_id:
            return
        kept = self.path / ARCHIVE / self._previous_launch / relpath
        if kept.exists():
            return
        kept.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(target, kept)
        except OSError:  # filesystems without hard links
            kept.write_bytes(target.read_bytes())

    def write(self, relpath: str, text: str, mode: int = 0o644) -> Path:
        target = self.path / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        self._archive(target, relpath)
        _atomic_write(target, masking.mask(text).encode(), mode)
        return target

    def write_all(self, files: Mapping[str, tuple[str, int]]) -> list[str]:
        for relpath, (text, mode) in files.items():
            self.write(relpath, text, mode)
        return sorted(files)

    def write_record(self, record: JobRecord) -> Path:
        text = json.dumps(record.to_dict(), indent=2, sort_keys=True)
        return self.write(RECORD, text + "\n")
