"""The job folder must be the user's own: nobody else may swap its scripts before the job runs.

A folder another user owns, or one that group or others may write to, is refused; a team that
shares a group on purpose sets HPL_ALLOW_GROUP_WRITABLE=1 (others-writable is never taken).
"""

from __future__ import annotations

import os
import stat

from hyperpod_launcher.util.errors import UserError

ALLOW_GROUP = "HPL_ALLOW_GROUP_WRITABLE"


def check_owned(path: str) -> None:
    """Raise one line if the existing folder at `path` is not safely the user's."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(info.st_mode):
        raise UserError(f"job folder {path} exists and is not a folder; move it away")
    if info.st_uid != os.geteuid():
        raise UserError(
            f"job folder {path} belongs to another user (uid {info.st_uid}); choose a "
            "base_results_dir or run name of your own"
        )
    group = 0 if os.environ.get(ALLOW_GROUP) == "1" else stat.S_IWGRP
    if info.st_mode & (stat.S_IWOTH | group):
        mode = oct(stat.S_IMODE(info.st_mode))[2:]
        raise UserError(
            f"job folder {path} is writable by group or others (mode {mode}): another user "
            f"could change its scripts before the job starts; run chmod go-w {path} "
            f"(a shared group: {ALLOW_GROUP}=1)"
        )


def prepare(path: str) -> None:
    """Check the job folder, and create it (mode 0755, whatever the umask) if missing."""
    check_owned(path)
    if not os.path.isdir(path):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        try:
            os.mkdir(path)
        except FileExistsError:
            check_owned(path)
            return
        os.chmod(path, 0o755)
