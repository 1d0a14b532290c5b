"""The district's app configuration: ``passport.yaml`` loaded into pydantic models.

    from passport_pipeline.config import load_config
    config = load_config()                     # PASSPORT_CONFIG, ./passport.yaml or the repo's
    for source in config.sources:              # OneRosterSource | SmsSource | CsvBundleSource
        ...

An invalid file raises :class:`ConfigError` with one line per problem (key path, value, what is
allowed). :mod:`.models` is the file as a whole, :mod:`.apps` the three kinds of source and
what clients read from them, :mod:`.settings` the sections they share, :mod:`.load` where the
file and the warehouse are found, :mod:`.errors` how problems are worded.
"""

from passport_pipeline.config.apps import (
    EMBEDDED,
    ONEROSTER_BASE_PATHS,
    ONEROSTER_ENDPOINTS,
    SMS_ENDPOINTS,
    ApiSource,
    CsvBundleSource,
    OneRosterSource,
    SmsSource,
    default_scopes,
)
from passport_pipeline.config.errors import ConfigError
from passport_pipeline.config.load import CONFIG_ENV, WAREHOUSE_ENV, config_path, load_config
from passport_pipeline.config.models import PassportConfig, PrivacySettings, SimulatorConfig, Source
from passport_pipeline.config.settings import (
    AdvancedSettings,
    Credentials,
    CredentialsConfig,
    DeltaSettings,
    HoldThreshold,
    HttpPolicy,
    SchoolsMapping,
)

__all__ = [
    "CONFIG_ENV",
    "EMBEDDED",
    "ONEROSTER_BASE_PATHS",
    "ONEROSTER_ENDPOINTS",
    "SMS_ENDPOINTS",
    "WAREHOUSE_ENV",
    "AdvancedSettings",
    "ApiSource",
    "ConfigError",
    "Credentials",
    "CredentialsConfig",
    "CsvBundleSource",
    "DeltaSettings",
    "HoldThreshold",
    "HttpPolicy",
    "OneRosterSource",
    "PassportConfig",
    "PrivacySettings",
    "SchoolsMapping",
    "SimulatorConfig",
    "SmsSource",
    "Source",
    "config_path",
    "default_scopes",
    "load_config",
]
