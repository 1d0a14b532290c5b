"""The three source apps of ``passport.yaml``, told apart by ``app``.

- :class:`OneRosterSource` (``skyward_oneroster``): Qmlativ or SMS 2.0 over OneRoster 1.1/1.2;
- :class:`SmsSource` (``skyward_sms``): the SMS 2.0 native API;
- :class:`CsvBundleSource` (``oneroster_csv``): a OneRoster 1.1 or 1.2 CSV bundle, folder or zip.

What clients read (stable): ``name``, ``app``, ``entities`` (canonical names in registry
order), ``sis_id_prefix``, ``sync_mode``, ``delta.enabled``, ``advanced``; for the API apps
``api_url`` and ``endpoints[name]`` (a request goes to ``f"{api_url}/{endpoints[name]}"``; SMS
paths may hold ``{NameId}`` or ``{SchoolId}``), ``server_url`` (``base_url`` made concrete),
``token_endpoint``, ``scopes`` and ``base_path`` (OneRoster), ``http`` and
``resolve_credentials(env)``; for CSV bundles ``path`` (absolute once ``embedded`` is resolved). Every source has a
``location``: where reports say it is read.

Defaults that depend on another setting (base path and scopes by OneRoster version, delta where
the app supports it) are filled before validation, so a loaded source holds the values in effect.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field, PrivateAttr, SecretStr, ValidationInfo, field_validator, model_validator

from passport_pipeline.config.errors import ConfigError, fail, one_of, problem, shown
from passport_pipeline.config.rules import EntityFilter, Expr, Requirement, rules_problems, source_attributes
from passport_pipeline.config.settings import (
    AdvancedSettings,
    Credentials,
    CredentialsConfig,
    DeltaSettings,
    HttpPolicy,
    Settings,
    http_url,
    resolved,
)
from passport_pipeline.entities import ENTITIES
from passport_pipeline.redaction import remember
from passport_pipeline.simulator.auth import DEMO_CREDENTIAL
from passport_pipeline.sources.csv_bundle import carried_column
from passport_pipeline.sources.settings import ONEROSTER_BASE_PATHS, oneroster_scopes
from passport_pipeline.sources.sms import PATHS as SMS_PATHS

EMBEDDED = "embedded"
"""``base_url`` of a source served by the embedded simulator."""

ONEROSTER_ENDPOINTS = {
    name: name
    for name in ("academicSessions", "classes", "courses", "demographics", "enrollments", "gradingPeriods",
                 "orgs", "schools", "students", "teachers", "terms", "users")
}
"""OneRoster collections and their paths under the base path."""

SMS_ENDPOINTS = SMS_PATHS
"""SMS 2.0 native endpoints and their usual paths; each district's Swagger may differ."""

SMS_PLACEHOLDERS = frozenset({"NameId", "SchoolId"})

_SLUG = re.compile(r"[a-z][a-z0-9_]*")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def default_scopes(version: str) -> tuple[str, ...]:
    """The read scopes for rosters, nested endpoints and demographics of a OneRoster version."""
    return oneroster_scopes(version)


class SourceBase(Settings):
    """What every source has, whatever the app."""

    DELTA: ClassVar[bool] = False
    """Whether this app can read only what changed (``dateLastModified``)."""
    WRITES_BACK: ClassVar[bool] = True
    """Whether ``two_way`` sync is possible with this app."""

    name: str
    """Short id of the source: names its tables (``raw.<name>__students``) and assets."""
    sis_id_prefix: str = ""
    """Prepended to every id of this source, references included, so sources never collide."""
    sync_mode: Literal["import", "two_way"] = "import"
    entities: tuple[str, ...] = tuple(ENTITIES)
    """Canonical entities to extract (default: all; every app provides each of them)."""
    delta: DeltaSettings = DeltaSettings()
    advanced: AdvancedSettings = AdvancedSettings()
    attributes: dict[str, dict[str, Expr]] = Field(default_factory=dict)
    """Attribute mapping per entity: Passport attribute -> source attribute or expression."""
    filters: dict[str, EntityFilter] = Field(default_factory=dict)
    """Filter rules per entity (include-only)."""
    requirements: dict[str, dict[str, Requirement]] = Field(default_factory=dict)
    """Data requirements per entity: attribute -> include | report_if_missing | skip_if_missing | mask."""

    @model_validator(mode="before")
    @classmethod
    def _delta_where_supported(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            delta = data.get("delta", {})
            if isinstance(delta, Mapping) and "enabled" not in delta:
                data = {**data, "delta": {**delta, "enabled": cls.DELTA}}
        return data

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG.fullmatch(value):
            raise problem(
                f"{shown(value)} is not a valid name: use lowercase letters, digits and _, "
                "starting with a letter (e.g. skyward_main)"
            )
        return value

    @field_validator("sis_id_prefix")
    @classmethod
    def _no_whitespace(cls, value: str) -> str:
        if re.search(r"\s", value):
            raise problem(f"{shown(value)} contains whitespace: a prefix is glued to ids, e.g. 'hs_' or 'district2-'")
        return value

    @field_validator("entities")
    @classmethod
    def _known_entities(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [((i,), f"unknown entity {shown(n)}: {one_of(list(ENTITIES), n)}", n)
                   for i, n in enumerate(names) if n not in ENTITIES]
        if unknown:
            fail(cls.__name__, unknown)
        if not names:
            raise problem("is empty: list at least one entity, or leave the key out to extract all")
        return tuple(name for name in ENTITIES if name in names)

    def _rule_problems(self):
        found = rules_problems(self.attributes, self.filters, self.requirements)
        if self.delta.enabled and not self.DELTA:
            why = f"app {self.app} cannot read only what changed: set enabled: false"
            found.append((("delta", "enabled"), why, True))
        if self.sync_mode == "two_way" and not self.WRITES_BACK:
            why = f"'two_way' is not possible with app {self.app}: it cannot take changes back"
            found.append((("sync_mode",), why, "two_way"))
        return found


class ApiSource(SourceBase):
    """A source read over HTTP with an OAuth token: the two Skyward API apps."""

    ENDPOINTS: ClassVar[dict[str, str]] = {}
    TOKEN_EXAMPLE: ClassVar[str] = ""
    SIMULATOR_PATH: ClassVar[str] = ""
    """Where this app's ``base_url`` is on the embedded simulator."""

    base_url: str
    """The server's API address (``https://…``), or ``embedded`` for the demo simulator."""
    token_url: str | None = None
    """Where tokens are requested; required except for ``embedded`` (never guessed)."""
    credentials: CredentialsConfig | None = None
    """Names of the environment variables holding the client id and secret."""
    http: HttpPolicy = HttpPolicy()
    endpoints: dict[str, str] = Field(default_factory=dict, validate_default=True)
    """Path overrides by endpoint name; the loaded config holds every endpoint's path."""

    _simulator_url: str | None = PrivateAttr(None)

    @field_validator("base_url")
    @classmethod
    def _url_or_embedded(cls, value: str) -> str:
        return value if value == EMBEDDED else http_url(value, "or 'embedded' for the demo simulator")

    @field_validator("token_url")
    @classmethod
    def _token_url(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)

    @field_validator("endpoints")
    @classmethod
    def _known_endpoints(cls, overrides: dict[str, str]) -> dict[str, str]:
        paths, wrong = dict(cls.ENDPOINTS), []
        for name, path in overrides.items():
            if name not in cls.ENDPOINTS:
                wrong.append(((name,), f"unknown endpoint '{name}': {one_of(list(cls.ENDPOINTS), name)}", path))
            elif why := _path_problem(path, cls.ENDPOINTS[name]):
                wrong.append(((name,), f"{shown(path)} {why}", path))
            else:
                paths[name] = path.strip("/")
        if wrong:
            fail(cls.__name__, wrong)
        return paths

    @property
    def embedded(self) -> bool:
        """Served by the embedded simulator (``base_url: embedded``)."""
        return self.base_url == EMBEDDED

    def served_by(self, simulator_url: str) -> ApiSource:
        """This source, with ``embedded`` pointing at a running simulator (unchanged otherwise)."""
        if not self.embedded:
            return self
        served = self.model_copy()
        served._simulator_url = http_url(simulator_url)
        return served

    def resolve_credentials(self, env: Mapping[str, str] = os.environ) -> Credentials:
        """The client id and secret from the environment; :class:`ConfigError` names what is unset.
        The secret is registered for scrubbing (:mod:`passport_pipeline.redaction`) as it is read.

        An ``embedded`` source uses the simulator's public demo credential when neither variable
        is set (or no ``credentials`` are given), so the shipped file works with no environment.
        """
        names = self.credentials
        client_id = env.get(names.client_id_env) if names else None
        secret = env.get(names.client_secret_env) if names else None
        if self.embedded and not client_id and not secret:
            return Credentials(DEMO_CREDENTIAL.client_id, SecretStr(DEMO_CREDENTIAL.secret))
        missing = [
            f"environment variable {variable} is not set: it must hold the {what} (credentials.{key})"
            for variable, value, what, key in (
                (names.client_id_env, client_id, "client id", "client_id_env"),
                (names.client_secret_env, secret, "client secret", "client_secret_env"),
            )
            if not value
        ]
        remember(secret, client_id=client_id)
        if missing:
            raise ConfigError(f"source '{self.name}' cannot authenticate:", missing)
        return Credentials(client_id, SecretStr(secret))

    @property
    def location(self) -> str:
        """Where the source is read, as reports name it: its API address."""
        try:
            return self.api_url
        except ConfigError:
            return "the embedded simulator (not running)"

    @property
    def server_url(self) -> str:
        """``base_url``, or its address on the running simulator for an ``embedded`` source."""
        if not self.embedded:
            return self.base_url
        if self._simulator_url is None:
            raise ConfigError(
                f"source '{self.name}' uses the embedded simulator, which is not running: "
                "start it and use config.served_by(its URL)"
            )
        return self._simulator_url + self.SIMULATOR_PATH

    def _rule_problems(self):
        found = super()._rule_problems()
        if self.embedded and self.token_url is not None:
            why = "must not be set when base_url is 'embedded': the simulator's token URL is known"
            found.append((("token_url",), why, self.token_url))
        if not self.embedded and self.token_url is None:
            why = f"missing: app {self.app} needs its token URL (e.g. {self.TOKEN_EXAMPLE}); it is never guessed from base_url"
            found.append((("token_url",), why, None))
        if not self.embedded and self.credentials is None:
            why = ("missing: give client_id_env and client_secret_env, the names of the environment variables "
                   "holding the client id and secret")
            found.append((("credentials",), why, None))
        return found


class OneRosterSource(ApiSource):
    """Skyward (Qmlativ, or SMS 2.0's OneRoster endpoint) over OneRoster REST 1.1 or 1.2."""

    DELTA: ClassVar[bool] = True
    ENDPOINTS: ClassVar[dict[str, str]] = ONEROSTER_ENDPOINTS
    TOKEN_EXAMPLE: ClassVar[str] = "https://district.skyward.com/DistrictAPI/oauth/token"

    app: Literal["skyward_oneroster"] = "skyward_oneroster"
    oneroster_version: Literal["1.1", "1.2"] = "1.1"
    base_path: str = ONEROSTER_BASE_PATHS["1.1"]
    """Where OneRoster lives under ``base_url`` (default by version)."""
    scopes: tuple[str, ...] = default_scopes("1.1")
    """OAuth scopes requested (default: the version's roster-core, roster and demographics read)."""

    @model_validator(mode="before")
    @classmethod
    def _version_defaults(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            version = data.get("oneroster_version", "1.1")
            if isinstance(version, float | int) and not isinstance(version, bool):
                version = f"{version:g}"  # YAML reads 1.1 as a number
            data = {**data, "oneroster_version": version}
            if version in ONEROSTER_BASE_PATHS:
                data = {"base_path": ONEROSTER_BASE_PATHS[version], "scopes": default_scopes(version), **data}
        return data

    @field_validator("base_path")
    @classmethod
    def _absolute_path(cls, value: str) -> str:
        if not value.startswith("/") or re.search(r"\s|://|[?#]", value):
            raise problem(f"{shown(value)} is not a path under base_url: it starts with / (e.g. /ims/oneroster/v1p2)")
        return value.rstrip("/")

    @property
    def api_url(self) -> str:
        """``{base_url}{base_path}``: where the collection paths start."""
        return self.server_url + self.base_path

    @property
    def token_endpoint(self) -> str:
        """``token_url``, or the embedded simulator's ``/oauth/token``."""
        return self.token_url or f"{self.server_url}/oauth/token"


class SmsSource(ApiSource):
    """Skyward SMS 2.0 through its native ("Read-Only") API: PascalCase fields, cursor paging."""

    ENDPOINTS: ClassVar[dict[str, str]] = SMS_ENDPOINTS
    TOKEN_EXAMPLE: ClassVar[str] = "https://sms.district.org/api/token"
    SIMULATOR_PATH: ClassVar[str] = "/api"

    app: Literal["skyward_sms"] = "skyward_sms"

    @property
    def api_url(self) -> str:
        """The API base (``base_url``, e.g. ``https://host/api``): native paths start there."""
        return self.server_url

    @property
    def token_endpoint(self) -> str:
        """``token_url``, or the embedded simulator's ``/api/token``."""
        return self.token_url or f"{self.server_url}/token"


class CsvBundleSource(SourceBase):
    """A OneRoster 1.1 or 1.2 CSV bundle: a folder, or a .zip, of manifest.csv, orgs.csv, users.csv…"""

    WRITES_BACK: ClassVar[bool] = False

    app: Literal["oneroster_csv"] = "oneroster_csv"
    path: Path
    """The bundle: a folder or a .zip file (relative paths are from the config file's folder), or
    ``embedded``: the embedded demo district's other-system bundle, written on first use."""

    @field_validator("path")
    @classmethod
    def _bundle(cls, value: Path, info: ValidationInfo) -> Path:
        if value == Path(EMBEDDED):
            return value
        path = resolved(value, info)
        if path.is_file() and path.suffix.lower() != ".zip":
            raise problem(f"{shown(str(path))} is a file but not a .zip: give the bundle's folder or .zip")
        return path

    @property
    def embedded(self) -> bool:
        """Reads the embedded district's other-system bundle (``path: embedded``), not written yet."""
        return self.path == Path(EMBEDDED)

    def bundled_at(self, bundle: Path) -> CsvBundleSource:
        """This source reading ``bundle``, the other-system bundle written for ``embedded`` (unchanged otherwise)."""
        return self.model_copy(update={"path": bundle}) if self.embedded else self

    @property
    def bundle_path(self) -> Path:
        """``path``; :class:`ConfigError` when it is ``embedded`` and the bundle is not written yet."""
        if self.embedded:
            raise ConfigError(
                f"source '{self.name}' reads the embedded district's other-system bundle, which is not written yet: "
                "open the config with simulator.embedded.reachable(config)")
        return self.path

    @property
    def location(self) -> str:
        """Where the source is read, as reports name it: the bundle's folder or zip."""
        return "the embedded district's other-system bundle (not written yet)" if self.embedded else str(self.path)

    def _rule_problems(self):
        found = super()._rule_problems()
        for loc, entity, name in source_attributes(self.attributes):
            column = carried_column(entity, name)
            if column:
                why = (f"{shown(name)} is always empty here: a oneroster_csv payload leaves out the columns "
                       f"that canonical attributes carry; use {column}")
                found.append((loc, why, name))
        return found


def _path_problem(path: str, default: str) -> str | None:
    """Why an endpoint path override cannot work, or ``None``."""
    if not path.strip("/") or re.search(r"\s|://", path):
        return f"is not a path relative to the API address (e.g. {default})"
    used = set(_PLACEHOLDER.findall(path))
    if used - SMS_PLACEHOLDERS:
        unknown = ", ".join(sorted(used - SMS_PLACEHOLDERS))
        return f"uses unknown placeholder(s) {unknown}: allowed are {{NameId}}, {{SchoolId}}"
    needed = set(_PLACEHOLDER.findall(default)) - used
    if needed:
        return f"must keep {', '.join('{' + n + '}' for n in sorted(needed))} (e.g. {default})"
    return None
