"""A step's logs and events, scrubbed of secrets before Dagster stores or prints them.

Everything a step tells Dagster — its ``context.log`` lines, materialization and check metadata, a
failure's description, metadata and traceback — goes through the step's log manager on its way to
the event log (kept for good), the console and the compute logs. :func:`scrubbed_logs` puts a
filter on that log manager which scrubs each record (:func:`passport_pipeline.redaction.scrub`),
its message and the Dagster event it carries, before any of them sees it; and it scrubs an error
escaping the step before Dagster words the step's failure and the run's from it (the run's
failure is logged by the run, not the step). Every step in ``defs/`` is decorated with it.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
from collections.abc import Callable

import dagster as dg
from dagster._core.log_manager import LOG_RECORD_EVENT_ATTR  # where a record carries its event

from passport_pipeline.redaction import scrub

_NAMES = ("__class__", "__enum__")
"""Keys of Dagster's serialized form whose values name a type, not text."""


class ScrubbingFilter(logging.Filter):
    """Scrubs a log record in place: its message, and the Dagster event it carries, if any."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = scrub(record.getMessage()), ()
        event = getattr(record, LOG_RECORD_EVENT_ATTR, None)
        if event is not None:
            setattr(record, LOG_RECORD_EVENT_ATTR, scrubbed(event))
        return True


def scrubbed(value: object) -> object:
    """A Dagster-serializable value (an event) with every text in it scrubbed; the value itself
    when nothing needed it."""
    serialized = dg.serialize_value(value)
    if scrub(serialized) == serialized:
        return value
    return dg.deserialize_value(json.dumps(_scrubbed_json(json.loads(serialized))))


def _scrubbed_json(value: object) -> object:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list):
        return [_scrubbed_json(item) for item in value]
    if isinstance(value, dict):
        return {key: item if key in _NAMES else _scrubbed_json(item) for key, item in value.items()}
    return value


def scrubbed_logs(step: Callable) -> Callable:
    """Decorate a step's function (context first): what it logs and the events it causes are
    scrubbed, and so is an error escaping it (see :func:`scrub_error`). The function is marked
    ``scrubs_logs``, a mark that decorators wrapping it with ``functools.wraps`` keep."""

    def scrubbing(context) -> None:
        if not any(isinstance(f, ScrubbingFilter) for f in context.log.filters):
            context.log.addFilter(ScrubbingFilter())

    if inspect.isgeneratorfunction(step):
        @functools.wraps(step)
        def stepping(context, *args, **kwargs):
            scrubbing(context)
            try:
                yield from step(context, *args, **kwargs)
            except BaseException as error:
                scrub_error(error)
                raise

        stepping.scrubs_logs = True
        return stepping

    @functools.wraps(step)
    def stepped(context, *args, **kwargs):
        scrubbing(context)
        try:
            return step(context, *args, **kwargs)
        except BaseException as error:
            scrub_error(error)
            raise

    stepped.scrubs_logs = True
    return stepped


def scrub_error(error: BaseException) -> None:
    """Scrub, in place, what Dagster words a failed step (and the failed run) from: the message of
    ``error`` and of every error behind it, and a ``dg.Failure``'s description and metadata."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        error.args = tuple(scrub(arg) if isinstance(arg, str) else arg for arg in error.args)
        if isinstance(error, dg.Failure):
            error.description = error.description and scrub(error.description)
            error.metadata = {key: scrubbed(value) for key, value in error.metadata.items()}
        error = error.__cause__ or error.__context__
