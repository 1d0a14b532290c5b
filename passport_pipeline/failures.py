"""Why a run stopped, in the one line a person reads: the cause and the fix, never a traceback.

:func:`explain` words the failures an operator meets and can fix — a refused, expired or inactive
credential, an unreachable server, a warehouse another sync is writing (or a district store
another simulator is), a full disk, a stop by Ctrl-C — and answers None for anything else (a
bug: its traceback is what helps, with ``--debug``). The same line is the CLI's message and,
through :func:`one_line_failures`, the Dagster step's failure description, so the terminal and
the run page say the same thing.
"""

from __future__ import annotations

import errno
import functools
import inspect
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb

from passport_pipeline.config import ApiSource, ConfigError, Source
from passport_pipeline.sources import AuthenticationError, SourceError
from passport_pipeline.warehouse.lock import Busy

_NO_SPACE = re.compile(r'"([^"]+)"[^"]*?: No space left on device|No space left on device', re.IGNORECASE)
STOPPED = ("The sync was stopped (Ctrl-C or SIGTERM) before it ended: every scope it had not finished keeps "
           "its previous data. Run it again to finish.")


def explain(error: BaseException, source: Source | None = None) -> str | None:
    """The one line a person should read for ``error`` (of ``source``, when a source raised it), or
    None when it is not a failure an operator fixes (a bug)."""
    for cause in _chain(error):
        line = _explain_one(cause, source)
        if line is not None:
            return " ".join(line.split())
    return None


def _explain_one(error: BaseException, source: Source | None) -> str | None:
    if isinstance(error, dg.Failure) and error.description:
        return error.description
    if isinstance(error, (Busy, ConfigError)):
        return str(error)
    if isinstance(error, KeyboardInterrupt) or type(error).__name__ == "DagsterExecutionInterruptedError":
        return STOPPED
    if _no_space(error):
        return _disk_full(error)
    if isinstance(error, SourceError):
        named = f"Source '{source.name}': " if source is not None else ""
        if isinstance(error, AuthenticationError) and isinstance(source, ApiSource):
            from passport_pipeline.connection_check import _refusal  # Test Connection's words for a refusal
            from passport_pipeline.sources.connect import CLIENTS

            return named + _refusal(source, CLIENTS[source.app].credential, error).detail
        return named + str(error)
    return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__


def _no_space(error: BaseException) -> bool:
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return True
    return isinstance(error, duckdb.Error) and "no space left on device" in str(error).lower()


def _disk_full(error: BaseException) -> str:
    named = getattr(error, "filename", None)
    if named is None:
        found = _NO_SPACE.search(str(error))
        named = found.group(1) if found and found.group(1) else None
    where = f"the disk holding {Path(named).parent}" if named else "a disk the sync writes to"
    return (f"No space left on device: {where} is full. Free space there (or move the warehouse to a larger "
            "disk: passport.yaml's warehouse setting), then sync again; every scope not finished keeps its "
            "previous data.")


@contextmanager
def failing_in_one_line(source: Source | None = None) -> Iterator[None]:
    """Inside a Dagster step or resource: a failure :func:`explain` can word becomes a
    ``dg.Failure`` with that line as its description (the run page's message); the original stays
    its cause, for the stack trace. Anything else goes up unchanged."""
    try:
        yield
    except dg.Failure:
        raise
    except BaseException as error:
        line = explain(error, source)
        if line is None or line == STOPPED:  # a bug keeps its own error; Dagster handles interrupts
            raise
        raise dg.Failure(description=line) from error


def one_line_failures(source: Source | None = None) -> Callable[[Callable], Callable]:
    """Decorate a Dagster step's function with :func:`failing_in_one_line` (generator steps included)."""

    def decorate(step: Callable) -> Callable:
        if inspect.isgeneratorfunction(step):
            @functools.wraps(step)
            def stepping(*args, **kwargs):
                with failing_in_one_line(source):
                    yield from step(*args, **kwargs)

            return stepping

        @functools.wraps(step)
        def stepped(*args, **kwargs):
            with failing_in_one_line(source):
                return step(*args, **kwargs)

        return stepped

    return decorate
