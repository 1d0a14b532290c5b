"""Source clients: read Skyward (OneRoster 1.1/1.2 REST, SMS 2.0 native) and OneRoster CSV bundles.

No Dagster here. One HTTP policy (:mod:`.http`: timeouts, retries, ``Retry-After``, token
refresh) and OAuth tokens (:mod:`.auth`) under two API clients (:mod:`.oneroster`, :mod:`.sms`)
whose paged reads (:class:`~.paging.Pull`) survive the quirks of real servers and refuse a page
of the wrong kind or a read short of the server's count; the bundle reader (:mod:`.csv_bundle`)
for files. Every client declares its reads (:mod:`.reads`); extraction lands them through the
field map of their standard (:mod:`passport_pipeline.warehouse.normalize_sql_oneroster`,
``normalize_sql_sms``). Errors (:mod:`.errors`) read as instructions for a district admin and
never contain a secret.

Typical use::

    settings = ClientSettings(base_url=..., token_url=..., client_id=..., client_secret=..., scopes=...)
    with OneRosterClient(settings) as client:
        pull = client.read("students")
        for page in pull:
            ...  # the records of one page, as the server sent them
        pull.stats.complete, pull.stats.total, pull.stats.clamped_limit, pull.stats.warnings
"""

from passport_pipeline.sources.errors import (
    AuthenticationError,
    BadResponse,
    ConnectionFailed,
    ForbiddenError,
    NotFoundError,
    RateLimited,
    RequestRejected,
    ServerError,
    ShortRead,
    SourceError,
    WrongKind,
)
from passport_pipeline.sources.oneroster import OneRosterClient
from passport_pipeline.sources.paging import Pull, PullStats
from passport_pipeline.sources.parallel import PullEvent, run_pulls
from passport_pipeline.sources.settings import ClientSettings
from passport_pipeline.sources.sms import SmsClient

__all__ = [
    "AuthenticationError", "BadResponse", "ClientSettings", "ConnectionFailed", "ForbiddenError",
    "NotFoundError", "OneRosterClient", "Pull", "PullEvent", "PullStats", "RateLimited", "RequestRejected",
    "ServerError", "ShortRead", "SmsClient", "SourceError", "WrongKind", "run_pulls",
]
