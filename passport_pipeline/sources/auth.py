"""OAuth 2 bearer tokens for the source APIs: fetched on first use, refreshed before expiry.

Two grants, both with HTTP Basic ``client_id:secret``:

- OneRoster / Qmlativ: client credentials, form ``grant_type=client_credentials&scope=...``
  (the scope is always sent: some servers refuse a token request without it);
- Skyward SMS 2.0 native: the password grant, form ``grant_type=password&username=&password=``.

A token is replaced ``refresh_margin_s`` before ``expires_in`` runs out (at most half its
lifetime early, so very short-lived tokens are still used), or at once when the API says it
has expired (:meth:`BearerTokens.invalidate`). Refusals become :class:`AuthenticationError`
messages that name the token URL, the server's own words and the environment variables to
check — never the secret: the secret (with its client id) and every token issued are registered
for scrubbing (:func:`passport_pipeline.redaction.remember`) as soon as they are known.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping

import requests

from passport_pipeline.redaction import remember
from passport_pipeline.sources.errors import AuthenticationError, BadResponse, describe_error, shown_url
from passport_pipeline.sources.settings import ClientSettings

PostForm = Callable[[str, Mapping[str, str], tuple[str, str]], requests.Response]
"""``post_form(url, form, basic_auth) -> response``: the HTTP policy's retried POST."""

DEFAULT_EXPIRES_IN = 3600.0


class BearerTokens:
    """The current bearer token of one credential; safe to share across threads."""

    def __init__(
        self,
        post_form: PostForm,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        form: Mapping[str, str],
        credential_hint: str,
        refresh_margin_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        remember(client_secret, client_id=client_id)
        self._post = post_form
        self._url = token_url
        self._basic = (client_id, client_secret)
        self._form = dict(form)
        self._hint = credential_hint
        self._margin = refresh_margin_s
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._refresh_at = 0.0
        self._granted: frozenset[str] | None = None
        self.issued = 0
        """How many tokens were fetched (refreshes included)."""

    @classmethod
    def client_credentials(cls, post_form: PostForm, settings: ClientSettings, **kwargs) -> BearerTokens:
        """Tokens for OneRoster: the client credentials grant with the configured scopes."""
        if not settings.token_url:
            raise ValueError("a OneRoster source needs its token URL (it cannot be derived safely)")
        return cls(
            post_form, token_url=settings.token_url, client_id=settings.client_id,
            client_secret=settings.client_secret,
            form={"grant_type": "client_credentials", "scope": " ".join(settings.scopes)},
            credential_hint=settings.credential_hint(),
            refresh_margin_s=settings.token_refresh_margin_s, **kwargs,
        )

    @classmethod
    def password(cls, post_form: PostForm, settings: ClientSettings, **kwargs) -> BearerTokens:
        """Tokens for the SMS native API: the password grant with the API key and secret."""
        token_url = settings.token_url or settings.base_url.rstrip("/") + "/token"
        return cls(
            post_form, token_url=token_url, client_id=settings.client_id,
            client_secret=settings.client_secret,
            form={"grant_type": "password", "username": settings.client_id,
                  "password": settings.client_secret},
            credential_hint=settings.credential_hint(),
            refresh_margin_s=settings.token_refresh_margin_s, **kwargs,
        )

    @property
    def token_url(self) -> str:
        return self._url

    def token(self) -> str:
        """A token that is not about to expire, fetching a new one when needed."""
        with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                self._fetch()
            return self._token

    def invalidate(self, token: str) -> None:
        """The API refused ``token``: drop it, unless another thread already replaced it."""
        with self._lock:
            if self._token == token:
                self._token = None

    def granted_scopes(self) -> frozenset[str] | None:
        """The scopes the token response granted (``None`` when the server does not say)."""
        self.token()
        return self._granted

    def _fetch(self) -> None:
        response = self._post(self._url, self._form, self._basic)
        if response.status_code != 200:
            raise self._refusal(response)
        try:
            body = json.loads(response.content)
            access_token = body["access_token"]
        except (ValueError, KeyError, TypeError):
            raise BadResponse(
                f"The token URL {shown_url(self._url)} answered 200 without an access token: "
                "check that the token URL points at the OAuth token endpoint.",
                status=200, endpoint=shown_url(self._url),
            ) from None
        if not isinstance(access_token, str) or not access_token:
            raise BadResponse(f"The token URL {shown_url(self._url)} returned an empty access token.",
                              status=200, endpoint=shown_url(self._url))
        remember(access_token)
        lifetime = _seconds(body.get("expires_in"))
        now = self._clock()
        self._token = access_token
        self._refresh_at = now + lifetime - min(self._margin, lifetime / 2)
        scope = body.get("scope")
        self._granted = frozenset(scope.split()) if isinstance(scope, str) else None
        self.issued += 1

    def _refusal(self, response: requests.Response) -> AuthenticationError:
        status = response.status_code
        said = describe_error(response.content)
        words = str(said)
        url = shown_url(self._url)
        if said.code == "invalid_scope":
            return AuthenticationError(
                f"The token URL {url} refused the requested scopes ({status} {words}). Ask the SIS "
                "administrator to grant them to this credential, or remove them from the source's scopes.",
                status=status, endpoint=url, said=said,
            )
        if status == 401 or said.code in ("invalid_client", "invalid_grant", "unauthorized_client"):
            return AuthenticationError(
                f"The token URL {url} rejected the client id/secret ({status} {words}): check {self._hint}.",
                status=status, endpoint=url, said=said,
            )
        if status == 404:
            return AuthenticationError(
                f"The token URL {url} does not exist (404): check the token URL setting.",
                status=status, endpoint=url, said=said,
            )
        return AuthenticationError(
            f"The token URL {url} answered {status} ({words}): check the token URL and {self._hint}.",
            status=status, endpoint=url, said=said,
        )


def _seconds(value: object) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return DEFAULT_EXPIRES_IN
    return seconds if seconds > 0 else DEFAULT_EXPIRES_IN

