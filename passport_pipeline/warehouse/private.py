"""Files only their owner can read: the warehouse (and later the exports) hold children's data.

A new file gets the mode the process umask leaves it (often 0644, readable by every user of the
machine), whoever creates it — DuckDB included. So files that hold the roster are created inside
:func:`owner_only_files` (0600), in a folder made owner-only by :func:`private_folder` (0700),
which also covers the files DuckDB creates beside the warehouse later (its WAL, spill files);
:func:`private_file` tightens a file created before.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FILE_MODE = 0o600
FOLDER_MODE = 0o700
_OTHERS = 0o077

_umask = threading.RLock()


@contextmanager
def owner_only_files() -> Iterator[None]:
    """Files (and folders) created inside are readable by their owner only, whatever the umask.

    The umask belongs to the whole process, so for this short while every file it creates is
    owner-only: a stricter mode, never a looser one.
    """
    with _umask:
        previous = os.umask(_OTHERS)
        os.umask(previous | _OTHERS)
        try:
            yield
        finally:
            os.umask(previous)


def private_file(path: Path) -> str | None:
    """Make the existing file ``path`` owner-only; say how, when it was readable by others."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if not mode & _OTHERS:
        return None
    os.chmod(path, mode & FILE_MODE)
    return f"{path.name} made owner-only ({mode:04o} -> {mode & FILE_MODE:04o})"


def private_folder(folder: Path) -> str | None:
    """Create ``folder`` owner-only, or make it so; say how, when it was open to others.

    A folder this user does not own, a shared one (sticky, like /tmp) or the home folder is left
    as it is: the line says so, and what to do.
    """
    if not folder.exists():
        folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        os.chmod(folder, FOLDER_MODE)
        return None
    info = folder.stat()
    mode = stat.S_IMODE(info.st_mode)
    if not mode & _OTHERS:
        return None
    if info.st_uid != os.getuid() or mode & stat.S_ISVTX or folder.resolve() == Path.home().resolve():
        return (f"its folder {folder} (mode {mode:04o}) is not this user's own and was left as it is, so files "
                "created beside it may be readable by others: give it a folder of its own")
    os.chmod(folder, mode & FOLDER_MODE)
    return f"folder {folder} made owner-only ({mode:04o} -> {mode & FOLDER_MODE:04o})"
