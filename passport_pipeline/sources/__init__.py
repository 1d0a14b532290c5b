"""Source clients: read Skyward (OneRoster 1.1/1.2 REST, SMS 2.0 native) into canonical records.

No Dagster here. One HTTP policy (:mod:`.http`: timeouts, retries, ``Retry-After``, token
refresh) and OAuth tokens (:mod:`.auth`) under two clients (:mod:`.oneroster`, :mod:`.sms`)
whose paged reads (:class:`~.paging.Pull`) survive the quirks of real servers; normalizers
(:mod:`.normalize_oneroster`, :mod:`.normalize_sms`) turn pages into canonical records of
:mod:`passport_pipeline.entities`, quarantining broken ones. Errors (:mod:`.errors`) read as
instructions for a district admin and never contain a secret.

Typical use::

    settings = ClientSettings(base_url=..., token_url=..., client_id=..., client_secret=..., scopes=...)
    with OneRosterClient(settings) as client:
        pull = client.pull("students")
        for page in pull:
            batch = normalize_oneroster(pull.stats.endpoint, page)
            ...  # batch.rows["students"], batch.quarantined
        pull.stats.complete, pull.stats.clamped_limit, pull.stats.warnings
"""

from passport_pipeline.sources.errors import (
    AuthenticationError,
    BadResponse,
    ConnectionFailed,
    ForbiddenError,
    NotFoundError,
    RequestRejected,
    ServerError,
    ShortRead,
    SourceError,
    WrongKind,
)
from passport_pipeline.sources.normalize import Normalized, Quarantined
from passport_pipeline.sources.normalize_oneroster import normalize_oneroster
from passport_pipeline.sources.normalize_sms import normalize_sms
from passport_pipeline.sources.oneroster import OneRosterClient
from passport_pipeline.sources.paging import Pull, PullStats
from passport_pipeline.sources.parallel import PullEvent, run_pulls
from passport_pipeline.sources.settings import ClientSettings
from passport_pipeline.sources.sms import SmsClient

__all__ = [
    "AuthenticationError", "BadResponse", "ClientSettings", "ConnectionFailed", "ForbiddenError",
    "Normalized", "NotFoundError", "OneRosterClient", "Pull", "PullEvent", "PullStats", "Quarantined",
    "RequestRejected", "ServerError", "ShortRead", "SmsClient", "SourceError", "WrongKind",
    "normalize_oneroster", "normalize_sms", "run_pulls",
]
