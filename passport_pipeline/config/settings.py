"""The building blocks of the config: the sections sources share, and the checks of values.

:class:`Settings` is the base of every section (unknown keys are errors, values immutable).
The sections: :class:`HttpPolicy`, :class:`CredentialsConfig`, :class:`DeltaSettings` and
:class:`AdvancedSettings` (with :class:`HoldThreshold` and :class:`SchoolsMapping`); field
docstrings say what a setting means to a district admin. :func:`http_url` and
:func:`resolved` check URLs and paths the same way everywhere.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, NamedTuple
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationInfo, field_validator, model_validator

from passport_pipeline.config.errors import Loc, fail, one_of, problem, shown
from passport_pipeline.entities import ENTITIES


class Settings(BaseModel):
    """Base of every section: unknown keys are errors, values are immutable once loaded.

    Numbers are accepted where text is expected (YAML reads ``sis_id_prefix: 2024`` and school
    ids as numbers).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)

    def _rule_problems(self) -> list[tuple[Loc, str, Any]]:
        """Rules across this section's settings, as ``(key, message, value)``; none by default."""
        return []

    @model_validator(mode="after")
    def _check_rules(self):
        found = self._rule_problems()
        if found:
            fail(type(self).__name__, found)
        return self


class HttpPolicy(Settings):
    """How a source is read over HTTP: paging, timeouts, retries, concurrency and TLS."""

    page_size: int = Field(1000, ge=1, le=10_000)
    """Records asked for per page; servers may silently return fewer."""
    connect_timeout_s: float = Field(10, gt=0)
    """Seconds to wait for the server to accept a connection."""
    read_timeout_s: float = Field(120, gt=0)
    """Seconds to wait for a page; some Skyward endpoints take minutes."""
    max_retries: int = Field(6, ge=0, le=20)
    """Retries of one request after 429, 5xx or a dropped connection, before giving up."""
    backoff_base_s: float = Field(0.5, gt=0)
    """First wait between retries; it doubles each time (``Retry-After`` wins when sent)."""
    backoff_max_s: float = Field(30, gt=0)
    """Longest wait between retries."""
    max_concurrency: int = Field(4, ge=1, le=32)
    """Requests in flight at once for this source (endpoints and per-student calls)."""
    verify_tls: bool = True
    """Check the server's TLS certificate; turn off only for a self-hosted test server."""
    token_refresh_margin_s: float = Field(10, ge=0)
    """Renew the access token this many seconds before it expires."""

    def _rule_problems(self):
        if self.backoff_max_s < self.backoff_base_s:
            why = f"{self.backoff_max_s} is less than backoff_base_s ({self.backoff_base_s})"
            return [(("backoff_max_s",), why, self.backoff_max_s)]
        return []


_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class CredentialsConfig(Settings):
    """Where the API credential comes from: the names of two environment variables.

    The values never live in the file; :meth:`ApiSource.resolve_credentials` reads them.
    """

    client_id_env: str
    """Environment variable holding the client id (Skyward: the key)."""
    client_secret_env: str
    """Environment variable holding the client secret."""

    @field_validator("client_id_env", "client_secret_env")
    @classmethod
    def _variable_name(cls, value: str) -> str:
        if not _ENV_NAME.fullmatch(value):
            raise problem(
                "must be the NAME of an environment variable (letters, digits and _, "
                "e.g. SKYWARD_CLIENT_SECRET), not the value itself"
            )
        return value


class Credentials(NamedTuple):
    """A resolved credential; the secret stays masked in every repr and log line."""

    client_id: str
    secret: SecretStr


class DeltaSettings(Settings):
    """Incremental extraction by ``dateLastModified``, between full syncs."""

    enabled: bool = True
    """Read only records changed since the last successful run (apps that support it)."""


class HoldThreshold(Settings):
    """When a changeset for one entity is held for a person instead of published.

    Shares are of the entity's published count; ``null`` means no limit.
    """

    deletes: float | None = Field(0.10, ge=0, le=1)
    updates: float | None = Field(0.75, ge=0, le=1)
    creates: float | None = Field(None, ge=0)
    min_count: int = Field(20, ge=0)
    """Below this many published records the shares are not checked (small entities)."""


class SchoolTarget(Settings):
    """The Passport school a source school maps to: a new one by ``name`` (source schools given
    the same name become one school), or an ``existing`` one by its Passport school id."""

    name: str | None = None
    existing: str | None = None

    def _rule_problems(self):
        given = [value for value in (self.name, self.existing) if value is not None]
        if len(given) != 1 or not given[0].strip():
            return [((), "give a new school's name, or {existing: <Passport school id>}", self.name)]
        return []


def _school_name_shorthand(value: Any) -> Any:
    """``"101": Lincoln Elementary`` means ``{name: Lincoln Elementary}``."""
    return {"name": value} if isinstance(value, str | int | float) and not isinstance(value, bool) else value


class SchoolsMapping(Settings):
    """Which source schools are synced, and to which Passport school each maps.

    In ``explicit`` mode each listed source school id maps to a new Passport school, given by
    its name (source schools given the same name become one school), or to an existing one,
    given as ``{existing: <Passport school id>}``. Schools not listed are unmapped: their data
    never reaches staging.
    """

    mode: Literal["auto", "explicit"] = "auto"
    """``auto``: every source school, as itself. ``explicit``: only those listed in ``schools``."""
    schools: dict[str, Annotated[SchoolTarget, BeforeValidator(_school_name_shorthand)]] = Field(default_factory=dict)
    """source school id -> a new school's name, or {existing: Passport school id}."""

    def _rule_problems(self):
        if self.mode == "explicit" and not self.schools:
            why = "missing: mode explicit needs at least one 'source school id: Passport school' line"
            return [(("schools",), why, None)]
        if self.mode == "auto" and self.schools:
            return [(("mode",), "'auto' maps every school: set mode: explicit to use the schools list", "auto")]
        return []


class AdvancedSettings(Settings):
    """School Passport's advanced settings of an app (DESIGN.md §3); later issues apply them."""

    bulk_upload_mode: bool = True
    """A complete full sync is a snapshot: what is absent from a complete school is deleted."""
    sync_emergency_contacts: bool = True
    """Include emergency contacts as well as guardians."""
    staff_scope: Literal["all_active_staff", "active_teachers_only"] = "all_active_staff"
    """Import every active staff member, or only active staff who teach a class."""
    preview_before_upload: bool = False
    """Every changeset waits for a person's approval before it is published."""
    hold_thresholds: dict[str, HoldThreshold] = Field(default_factory=dict, validate_default=True)
    """Per entity; entities not listed get the defaults (10% deletes, 75% updates, floor 20)."""
    schools_mapping: SchoolsMapping = SchoolsMapping()

    @field_validator("hold_thresholds")
    @classmethod
    def _every_entity(cls, given: dict[str, HoldThreshold]) -> dict[str, HoldThreshold]:
        unknown = [((n,), f"unknown entity '{n}': {one_of(list(ENTITIES), n)}", n) for n in given if n not in ENTITIES]
        if unknown:
            fail(cls.__name__, unknown)
        return {name: given.get(name, HoldThreshold()) for name in ENTITIES}


def http_url(value: str, alternative: str = "") -> str:
    """``value`` without its trailing slash if it is an http(s) URL, else a readable problem."""
    value = value.strip()
    parts = urlsplit(value)
    if parts.username or parts.password:
        raise problem(f"{shown(value)} holds a user name or password: credentials come from environment variables")
    if parts.scheme not in ("http", "https") or not parts.hostname or re.search(r"\s", value):
        example = "(e.g. https://district.skyward.com/DistrictAPI)"
        raise problem(f"{shown(value)} is not an http(s) URL {example} {alternative}".rstrip())
    return value.rstrip("/")


def resolved(path: Path, info: ValidationInfo) -> Path:
    """An absolute path: relative ones are from the config file's folder (the loader's context)."""
    base = Path((info.context or {}).get("config_dir") or Path.cwd())
    return Path(os.path.abspath(base / path.expanduser()))
