"""The job folder: each launch's own immutable folder, and the newest launch on top.

Every file of a launch is written into `<job folder>/launches/<launch id>/`, and its job refers
only to that folder, so no later launch of the same name changes what an earlier job runs
(nor what a restarted or requeued attempt of it runs). The top level of the job folder shows
the newest launch under the names users expect (hard links to its files, copies where the
filesystem has no links), and keeps no file of an earlier launch that the newest lacks.
Files are replaced by rename, never rewritten in place. Logs carry the job id in their name.

One launch writes into a job folder at a time (`locked`), from its first file to its record.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from hyperpod_launcher.jobs.records import RECORD, JobRecord, read_record
from hyperpod_launcher.prepare import job_folder
from hyperpod_launcher.spec.job import LAUNCHES, launch_folder
from hyperpod_launcher.util import masking

LOCK = ".launch.lock"


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


def _atomic_link(source: Path, target: Path) -> None:
    """`target` becomes `source`'s file (a hard link, else a copy), replaced by rename."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.link")
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(source, tmp)
        except OSError:  # filesystems without hard links
            shutil.copy2(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def locked(job_dir: str | Path) -> Iterator[None]:
    """Hold the job folder's launch lock (waits for another launch of the name to finish
    writing its files and record)."""
    folder = Path(job_dir)
    job_folder.prepare(str(folder))  # checked, and created 0755 if missing
    fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class JobDir:
    def __init__(self, path: str | Path, launch_id: str) -> None:
        self.path = Path(path)
        self.launch_id = launch_id
        self.launch_path = Path(launch_folder(str(path), launch_id))
        previous = read_record(self.path)
        self._previous = previous if previous and previous.launch_id != launch_id else None
        self._shown = False  # this launch's files are on top: it is the newest

    def _keep_previous(self, relpath: str) -> None:
        """A launch of an earlier version kept its files only on top: keep the file in that
        launch's folder before the top level shows another launch."""
        target = self.path / relpath
        previous = self._previous
        if previous is None or not previous.launch_id or not target.is_file():
            return
        if relpath != RECORD and relpath not in previous.artifacts:
            return
        ours = self.launch_path / relpath
        if ours.exists() and os.path.samefile(ours, target):
            return
        kept = Path(launch_folder(str(self.path), previous.launch_id)) / relpath
        if kept.exists():
            return
        kept.parent.mkdir(parents=True, exist_ok=True)
        _atomic_link(target, kept)

    def _show(self, relpath: str) -> None:
        target = self.path / relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        self._keep_previous(relpath)
        _atomic_link(self.launch_path / relpath, target)
        self._shown = True

    def write(self, relpath: str, text: str, mode: int = 0o644) -> Path:
        """Write a file of this launch into its folder, and show it on top."""
        source = self._write_own(relpath, text, mode)
        self._show(relpath)
        return source

    def _write_own(self, relpath: str, text: str, mode: int) -> Path:
        if relpath.split("/", 1)[0] == LAUNCHES:
            raise ValueError(f"{relpath}: {LAUNCHES}/ holds the launches' own folders")
        source = self.launch_path / relpath
        source.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(source, masking.mask(text).encode(), mode)
        return source

    def write_all(self, files: Mapping[str, tuple[str, int]]) -> list[str]:
        """This launch's files; on top, the earlier launch's files this one lacks go (each
        stays in its own launch folder)."""
        for relpath, (text, mode) in files.items():  # all of them first: a full disk
            self._write_own(relpath, text, mode)  # fails before the top level changes
        for relpath in files:
            self._show(relpath)
        self._retire(set(files) | {RECORD})
        return sorted(files)

    def _retire(self, keep: set[str]) -> None:
        if self._previous is None:
            return
        for relpath in sorted(set(self._previous.artifacts) - keep):
            if relpath.split("/", 1)[0] == LAUNCHES or os.path.isabs(relpath):
                continue
            target = self.path / relpath
            if not target.is_file():
                continue
            self._keep_previous(relpath)
            target.unlink()
            folder = target.parent
            while folder != self.path and not any(folder.iterdir()):
                folder.rmdir()  # a folder only that launch had
                folder = folder.parent

    def write_record(self, record: JobRecord) -> Path:
        """The launch's job.json, in its folder and (while it is the newest) on top."""
        text = json.dumps(record.to_dict(), indent=2, sort_keys=True) + "\n"
        source = self.launch_path / RECORD
        source.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(source, text.encode(), 0o644)
        on_top = read_record(self.path)
        on_top_id = on_top.launch_id if on_top else None
        displaced = self._previous.launch_id if self._previous else None
        # On top unless a newer launch is shown there meanwhile.
        if on_top_id in (None, self.launch_id) or (self._shown and on_top_id == displaced):
            self._keep_previous(RECORD)
            _atomic_link(source, self.path / RECORD)
        return source
