"""The plain settings a source client needs, free of the app's configuration models.

The configuration layer maps a source of ``passport.yaml`` onto :class:`ClientSettings`; the
clients read nothing else. The secret never shows in ``repr`` and error messages name only the
environment variables it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

ONEROSTER_BASE_PATHS = {"1.1": "/ims/oneroster/v1p1", "1.2": "/ims/oneroster/rostering/v1p2"}
"""The spec's base path per OneRoster version, used when ``base_path`` is not set."""


def oneroster_scopes(version: str) -> tuple[str, str, str]:
    """The read scopes of a OneRoster version: roster-core, roster (nested ``schools/{id}/...``
    reads) and demographics."""
    base = f"https://purl.imsglobal.org/spec/or/v1p{version[-1]}/scope"
    core, roster, demographics = (f"{base}/{s}.readonly" for s in ("roster-core", "roster", "roster-demographics"))
    return core, roster, demographics


@dataclass(frozen=True)
class ClientSettings:
    """Where a source lives, how to authenticate, and how hard to try.

    ``base_url`` is the server (OneRoster: ``https://host``, with ``base_path`` the OneRoster
    root; SMS native: the API base ``https://host/api``). ``token_url`` is required for
    OneRoster (it is deployment-specific, never derived); SMS defaults to ``{base_url}/token``.
    ``secret_env`` / ``client_id_env`` name the environment variables the credentials came
    from, so messages can say what to check.
    """

    base_url: str
    client_id: str
    client_secret: str = field(repr=False)
    token_url: str | None = None
    base_path: str = ""
    version: str = "1.1"
    scopes: tuple[str, ...] = ()
    page_size: int = 1000
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 120.0
    max_retries: int = 5
    backoff_base_s: float = 0.5
    backoff_max_s: float = 30.0
    retry_after_max_s: float = 300.0
    """A server's ``Retry-After`` is honored up to this long."""
    rate_limit_patience_s: float | None = None
    """The longest ``Retry-After`` of a 429 that is waited out; a longer one raises
    :class:`~.errors.RateLimited` at once. None (the sync): every one is waited out, up to
    ``retry_after_max_s``. Test Connection sets it, so that a check stays quick."""
    max_concurrency: int = 4
    """Requests in flight at once, across all threads using one client."""
    verify_tls: bool = True
    token_refresh_margin_s: float = 10.0
    endpoint_paths: Mapping[str, str] = field(default_factory=dict)
    """Per endpoint name (``staff``, ``students``...), a path overriding the default."""
    secret_env: str = ""
    client_id_env: str = ""

    def __post_init__(self) -> None:
        if self.page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {self.page_size}")
        if self.max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {self.max_concurrency}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, got {self.max_retries}")
        object.__setattr__(self, "scopes", tuple(self.scopes))
        object.__setattr__(self, "endpoint_paths", MappingProxyType(dict(self.endpoint_paths)))

    @property
    def oneroster_root(self) -> str:
        """``base_url`` + ``base_path`` (or the version's standard path), no trailing slash."""
        path = self.base_path or ONEROSTER_BASE_PATHS.get(self.version, "")
        return self.base_url.rstrip("/") + ("/" + path.strip("/") if path.strip("/") else "")

    def credential_hint(self) -> str:
        """What to check when credentials are refused, by environment variable name."""
        names = [name for name in (self.client_id_env, self.secret_env) if name]
        return " and ".join(names) if names else "the client id and secret"
