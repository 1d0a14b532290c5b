"""Independent pulls run side by side, their pages handed to one consumer thread.

Extraction reads many collections (or one collection per school) at once, but writes to the
warehouse from one thread. :func:`run_pulls` runs up to ``max_concurrency`` pulls on worker
threads and yields their pages as :class:`PullEvent`s through a small bounded queue, so memory
stays bounded by a few pages however large the district. Each pull ends with exactly one final
event: its stats when it completed, or the :class:`SourceError` that stopped it — a failing
pull never stops the others.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from passport_pipeline.sources.errors import SourceError
from passport_pipeline.sources.paging import Page, Pull, PullStats


@dataclass(frozen=True)
class PullEvent:
    """A page of one pull (``records``), or its end: ``stats`` when complete, else ``error``."""

    key: str | None
    records: Page | None = None
    stats: PullStats | None = None
    error: SourceError | None = None

    @property
    def final(self) -> bool:
        return self.records is None


class _Crash:
    """A bug (not a source error) in a worker, re-raised in the consumer."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def run_pulls(pulls: Mapping[str, Callable[[], Pull]], max_concurrency: int,
              buffered_pages: int | None = None) -> Iterator[PullEvent]:
    """Run each ``pulls[key]()`` on up to ``max_concurrency`` threads; yield pages as they come."""
    if not pulls:
        return
    events: queue.Queue = queue.Queue(maxsize=buffered_pages or 2 * max_concurrency)
    stop = threading.Event()

    def put(item: object) -> None:
        while not stop.is_set():
            try:
                events.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def work(key: str, start: Callable[[], Pull]) -> None:
        pull: Pull | None = None
        try:
            pull = start()
            for page in pull:
                if stop.is_set():
                    return
                put(PullEvent(key, records=page))
            put(PullEvent(key, stats=pull.stats))
        except SourceError as exc:
            put(PullEvent(key, stats=pull.stats if pull else None, error=exc))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises
            put(_Crash(exc))

    executor = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="pull")
    try:
        for key, start in pulls.items():
            executor.submit(work, key, start)
        remaining = len(pulls)
        while remaining:
            item = events.get()
            if isinstance(item, _Crash):
                raise item.exc
            if item.final:
                remaining -= 1
            yield item
    finally:
        stop.set()
        executor.shutdown(wait=True, cancel_futures=True)
