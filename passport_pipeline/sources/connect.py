"""From a configured source to a ready client: the one place ``passport.yaml`` meets the clients."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from passport_pipeline.config import ApiSource, CsvBundleSource, OneRosterSource, Source
from passport_pipeline.sources.csv_bundle import CsvBundle
from passport_pipeline.sources.oneroster import OneRosterClient
from passport_pipeline.sources.settings import ClientSettings
from passport_pipeline.sources.sms import SmsClient

Client = OneRosterClient | SmsClient | CsvBundle

CLIENTS: dict[str, type[Client]] = {"skyward_oneroster": OneRosterClient, "skyward_sms": SmsClient,
                                    "oneroster_csv": CsvBundle}
"""The client that reads each app of ``passport.yaml``."""


def client_settings(source: ApiSource, env: Mapping[str, str] = os.environ) -> ClientSettings:
    """The client's view of an API source; raises ``ConfigError`` naming an unset secret variable."""
    credentials = source.resolve_credentials(env)
    names = source.credentials
    http = source.http
    common = dict(
        client_id=credentials.client_id,
        client_secret=credentials.secret.get_secret_value(),
        token_url=source.token_endpoint,
        page_size=http.page_size,
        connect_timeout_s=http.connect_timeout_s,
        read_timeout_s=http.read_timeout_s,
        max_retries=http.max_retries,
        backoff_base_s=http.backoff_base_s,
        backoff_max_s=http.backoff_max_s,
        max_concurrency=http.max_concurrency,
        verify_tls=http.verify_tls,
        token_refresh_margin_s=http.token_refresh_margin_s,
        endpoint_paths=source.endpoints,
        secret_env=names.client_secret_env if names else "",
        client_id_env=names.client_id_env if names else "",
    )
    if isinstance(source, OneRosterSource):
        return ClientSettings(
            base_url=source.server_url,
            base_path=source.base_path,
            version=source.oneroster_version,
            scopes=source.scopes,
            **common,
        )
    return ClientSettings(base_url=source.api_url, **common)


def open_client(source: Source, env: Mapping[str, str] = os.environ, *,
                tuned: Callable[[ClientSettings], ClientSettings] | None = None) -> Client:
    """A client for ``source`` (close it when done). ``tuned`` adjusts an API client's settings
    (Test Connection cuts retries short). Raises ``ConfigError`` naming an unset secret variable,
    and :class:`~.csv_bundle.BundleError` when a bundle cannot be opened."""
    if isinstance(source, CsvBundleSource):
        return CsvBundle(source.bundle_path)
    settings = client_settings(source, env)
    return CLIENTS[source.app](tuned(settings) if tuned is not None else settings)
