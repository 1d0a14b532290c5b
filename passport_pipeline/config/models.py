"""``passport.yaml`` as a whole: the district's app configuration (DESIGN.md §3).

Five top-level sections: ``warehouse`` (the DuckDB file), ``timezone``, ``privacy`` (what the
Dagster UI may show of the roster), ``simulator`` (the embedded demo district, optional) and
``sources`` (see :mod:`.apps` for the three kinds and what clients read from them,
:mod:`.settings` for the sections they share).

Once the embedded simulator runs, ``config.served_by(url)`` gives the config whose ``embedded``
sources answer ``api_url`` and ``token_endpoint`` with its address, and once the embedded
district's other-system bundle is written, ``config.bundled_at(folder)`` the config whose
``path: embedded`` bundle sources read it; ``config.source(name)``
finds one source. Everything forbids unknown keys, so a misspelt key is an error, never a
silently ignored setting. Later issues add their rules as new sections beside these (per
source: attribute mapping, filters, data requirements; here: uniqueness domains, master fields,
schedule).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from passport_pipeline.config.apps import EMBEDDED, ApiSource, CsvBundleSource, OneRosterSource, SmsSource
from passport_pipeline.config.errors import ConfigError, fail, one_of, problem, shown
from passport_pipeline.config.settings import Settings, resolved

Source = Annotated[OneRosterSource | SmsSource | CsvBundleSource, Field(discriminator="app")]
"""One configured source; ``app`` says which kind."""


class SimulatorConfig(Settings):
    """The embedded demo district, served to sources whose ``base_url`` is ``embedded``."""

    seed: int = 7
    """Generator seed: the same seed gives the same district."""
    students: int = Field(5000, ge=1)
    """District size in students."""
    dirty: Literal["demo", "none"] = "demo"
    """Dirty data of every kind real districts have (``demo``), or none."""


NO_PERSONAL_DATA, PERSONAL_DATA = "no_personal_data", "personal_data"


class PrivacySettings(Settings):
    """What the Dagster UI may show of the roster. Previews and log lines are kept for good in
    Dagster's event log, which anyone with access to the UI can read."""

    previews: Literal["no_personal_data", "personal_data"] = NO_PERSONAL_DATA
    """``no_personal_data``: previews show ids, counts and what describes no person (school names,
    course titles, grades); ``personal_data``: also names, e-mails, phones, birth dates and
    demographics. An attribute a source's ``requirements`` mask is never shown, at any stage."""


class PassportConfig(Settings):
    """The whole ``passport.yaml``."""

    warehouse: Path = Field(Path("data/warehouse.duckdb"), validate_default=True)
    """The DuckDB warehouse file (relative paths are from the config file's folder)."""
    timezone: str = "America/Chicago"
    """The district's IANA timezone, for schedules and dates."""
    privacy: PrivacySettings = PrivacySettings()
    simulator: SimulatorConfig | None = None
    sources: list[Source] = Field(min_length=1)

    @model_validator(mode="wrap")
    @classmethod
    def _sources_together(cls, data: Any, handler):
        """Rules across sources, reported even when a source has problems of its own."""
        found = _cross_source_problems(data) if isinstance(data, Mapping) else []
        try:
            config = handler(data)
        except ValidationError as error:
            if not found:
                raise
            fail(cls.__name__, found, keep=error.errors())
        if found:
            fail(cls.__name__, found)
        return config

    @field_validator("warehouse")
    @classmethod
    def _warehouse_file(cls, value: Path, info: ValidationInfo) -> Path:
        path = resolved(value, info)
        if path.is_dir():
            raise problem(f"{shown(str(path))} is a folder: give the DuckDB file's path, e.g. data/warehouse.duckdb")
        return path

    @field_validator("timezone")
    @classmethod
    def _iana(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            close = difflib.get_close_matches(value, sorted(available_timezones()), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise problem(f"{shown(value)} is not a timezone: give an IANA name such as America/Chicago{hint}") from None
        return value

    def source(self, name: str) -> OneRosterSource | SmsSource | CsvBundleSource:
        """The source called ``name``; :class:`ConfigError` lists the configured names."""
        for source in self.sources:
            if source.name == name:
                return source
        raise ConfigError(f"no source named {shown(name)}: {one_of([s.name for s in self.sources], name)}")

    def served_by(self, simulator_url: str) -> PassportConfig:
        """This config with every ``embedded`` source pointing at the simulator at ``simulator_url``."""
        sources = [s.served_by(simulator_url) if isinstance(s, ApiSource) else s for s in self.sources]
        return self.model_copy(update={"sources": sources})

    def bundled_at(self, bundle: Path) -> PassportConfig:
        """This config with every ``path: embedded`` bundle source reading ``bundle`` (the embedded
        district's other-system bundle)."""
        sources = [s.bundled_at(bundle) if isinstance(s, CsvBundleSource) else s for s in self.sources]
        return self.model_copy(update={"sources": sources})


def _cross_source_problems(data: Mapping) -> list:
    """Duplicate names and ``embedded`` (``base_url``, or a bundle's ``path``) without a simulator,
    read from the sources as given."""
    sources = data.get("sources")
    if not isinstance(sources, list):
        return []
    found, first = [], {}
    for i, item in enumerate(sources):
        name, base_url, path = _given(item, "name"), _given(item, "base_url"), _given(item, "path")
        if isinstance(name, str) and name in first:
            why = f"'{name}' is already the name of sources[{first[name]}]: each source needs its own name"
            found.append((("sources", i, "name"), why, name))
        elif isinstance(name, str):
            first[name] = i
        if base_url == EMBEDDED and data.get("simulator") is None:
            why = "'embedded' needs a simulator: section at the top of the file (or give the server's URL)"
            found.append((("sources", i, "base_url"), why, base_url))
        if _given(item, "app") == "oneroster_csv" and str(path) == EMBEDDED and data.get("simulator") is None:
            why = "'embedded' needs a simulator: section at the top of the file (or give the bundle's folder or .zip)"
            found.append((("sources", i, "path"), why, path))
    return found


def _given(item: Any, key: str) -> Any:
    return item.get(key) if isinstance(item, Mapping) else getattr(item, key, None)
