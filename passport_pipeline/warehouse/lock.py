"""The warehouse's writer lock: one process writes at a time, and a refusal names who writes.

DuckDB already refuses a second writing process, but it names only a program and a pid, and the
only way to wait for it is to try again and again. So a writer first takes this lock: an OS lock
(``flock``) on a small file beside the warehouse (``<warehouse>.lock``) that names its holder —
pid, Dagster run id, what runs, since when. The OS drops the lock when the holding process ends,
however it ends (``kill -9``, a crash, a power cut), so a dead sync never blocks the next one.
A holder that ends cleanly empties the file; the next holder that finds it not empty knows the
previous one died holding it, and who it was.

Inside one process the lock is shared: every :class:`WriterLock` of the same warehouse counts on
the one OS lock, which is released with the last of them (a sync holds the warehouse across its
Dagster run, whose steps open it again).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

WAIT_SECONDS = 60.0
"""How long a writer waits for another one to finish before it is refused."""
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Owner:
    """Who holds (or held) the warehouse: enough for a person to find it and stop it."""

    pid: int
    what: str
    """What runs: ``passport-pipeline sync``, a Dagster run of a job, a script."""
    since: str
    """When it took the lock: ISO 8601, UTC."""
    run_id: str | None = None

    @classmethod
    def this_process(cls, what: str | None = None, run_id: str | None = None) -> Owner:
        return cls(pid=os.getpid(), what=what or Path(sys.argv[0] or "python").name,
                   since=datetime.now(timezone.utc).isoformat(timespec="seconds"), run_id=run_id)

    def __str__(self) -> str:
        since = self.since.replace("T", " ").removesuffix("+00:00") + " UTC"
        run = f"run {self.run_id} " if self.run_id else ""
        return f"{run}({self.what}, pid {self.pid}, since {since})"

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Owner | None:
        """The owner a lock file names; None when it names none (free, or being written)."""
        try:
            return cls(**json.loads(data))
        except (ValueError, TypeError):
            return None


@dataclass
class Claim:
    """A wish to write the warehouse: who asks, how long they wait, what they are told."""

    owner: Owner = field(default_factory=Owner.this_process)
    wait_seconds: float = WAIT_SECONDS
    waiting: Callable[[str], None] = lambda message: None
    """Told once, in words, when the warehouse is busy and the claim starts waiting."""
    took_over: Callable[[Owner], None] = lambda died: None
    """Called with the previous holder when it died holding the lock (its work was left unfinished)."""


class Busy(Exception):
    """A file another process holds, and will not let go of in time; ``str()`` is one line saying
    who holds it and what to do."""


_HELD_BY = re.compile(r"Conflicting lock is held in (.+?)(?: \(PID (\d+)\))?(?:\. See|\.?$)", re.IGNORECASE)


def duckdb_holder(error: Exception) -> str | None:
    """Who holds a DuckDB file, from DuckDB's refusal to open it (``pid 42, /usr/bin/duckdb``);
    None when ``error`` is no such refusal."""
    held = _HELD_BY.search(str(error))
    if held is None:
        return None
    return f"pid {held.group(2)}, {held.group(1)}" if held.group(2) else held.group(1)


class WarehouseBusy(Busy):
    """Another process writes the warehouse, and did not stop within the wait."""

    def __init__(self, path: Path, holder: Owner | str | None, waited: float) -> None:
        if isinstance(holder, Owner):
            who = f"another sync, {holder}"
            fix = f"Let it finish (or stop it: kill {holder.pid}), then sync again."
        else:
            who = f"another program ({holder})" if holder else "another process"
            fix = "Close that program (a DuckDB shell or notebook on the warehouse?), then sync again."
        super().__init__(f"The warehouse {path} is in use by {who}; gave up after waiting {waited:,.0f} s. {fix}")
        self.path = path
        self.holder = holder


class WriterLock:
    """This process's hold on a warehouse's writer lock (see the module)."""

    _held: dict[Path, list] = {}
    """Per lock file: [file descriptor, holders in this process]."""
    _guard = threading.Lock()

    def __init__(self, warehouse: Path, claim: Claim, deadline: float) -> None:
        """Take the lock for ``claim``, waiting until ``deadline`` (``time.monotonic()``) at most.

        Raises :class:`WarehouseBusy` naming the holder when it is still held then. ``fresh`` says
        whether this process took the OS lock now (it held none before): only then can it tell
        that writers before it are gone."""
        self.warehouse = warehouse.resolve()
        self.path = self.warehouse.with_name(self.warehouse.name + ".lock")
        self.fresh = False
        self._released = False
        with self._guard:
            held = self._held.get(self.path)
            if held is not None:
                held[1] += 1
                return
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                died = self._take(fd, claim, deadline)
                os.ftruncate(fd, 0)
                os.pwrite(fd, claim.owner.to_bytes(), 0)
            except BaseException:
                os.close(fd)
                raise
            self._held[self.path] = [fd, 1]
            self.fresh = True
        if died is not None:
            claim.took_over(died)

    def _take(self, fd: int, claim: Claim, deadline: float) -> Owner | None:
        """Wait for the OS lock; return the holder it names when that holder died holding it."""
        started = time.monotonic()
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return Owner.from_bytes(os.pread(fd, 4096, 0))
            except BlockingIOError:
                holder = Owner.from_bytes(os.pread(fd, 4096, 0))
                if time.monotonic() >= deadline:
                    raise WarehouseBusy(self.warehouse, holder, time.monotonic() - started) from None
                if not told:
                    claim.waiting(f"The warehouse is in use by {holder or 'another process'}: waiting up to "
                                  f"{max(0.0, deadline - time.monotonic()):,.0f} s for it to finish.")
                    told = True
                time.sleep(POLL_SECONDS)

    def release(self) -> None:
        """Let go; the last holder of this process empties the file (a clean end) and frees the OS lock."""
        with self._guard:
            held = self._held.get(self.path)
            if held is None or self._released:
                return
            self._released = True
            held[1] -= 1
            if held[1] > 0:
                return
            del self._held[self.path]
            fd = held[0]
            try:
                os.ftruncate(fd, 0)
            finally:
                os.close(fd)
