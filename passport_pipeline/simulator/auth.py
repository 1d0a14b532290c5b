"""Credentials and bearer tokens, as a Skyward server hands them out.

A :class:`Credential` behaves like a Qmlativ *Integration Access* record: a key (client id)
and secret, an active flag, optional effective and expiration dates, the scopes it may be
granted and, optionally, the schools it may see. Dates are compared with the simulated date
(store meta ``today``) when the store has one, else with today's date in UTC, so an
expiration "next week" means next week of the simulated district.

Two token endpoints issue tokens (see :class:`Authority`):

- OneRoster / Qmlativ ``POST /oauth/token``: OAuth 2 client credentials (RFC 6749 §4.4),
  HTTP Basic ``client_id:secret`` or ``client_id``/``client_secret`` in the form; errors are
  RFC 6749 §5.2 JSON (401 ``invalid_client``, 400 ``unsupported_grant_type``/``invalid_scope``).
- SMS 2.0 native ``POST /api/token``: the OWIN password grant, HTTP Basic ``key:secret`` and/or
  ``username``/``password`` in the form; any refusal is 400 ``invalid_grant``, as OWIN does.

Tokens are random opaque strings bound to the API that issued them, with the credential's
scopes and school restriction as they were at issue time.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Api = Literal["oneroster", "sms"]


class Credential(BaseModel):
    """An integration access record: who may get tokens, when, for what and for which schools."""

    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(min_length=1)
    secret: str = Field(min_length=1)
    active: bool = True
    effective_date: dt.date | None = None
    expiration_date: dt.date | None = None
    scopes: list[str] | None = None
    """Scopes this credential may be granted; ``None`` means every known scope."""
    school_ids: list[str] | None = None
    """OneRoster sourcedIds of the only schools this credential sees; ``None`` means all."""

    def public(self) -> dict:
        """The record without its secret, for listings."""
        return self.model_dump(mode="json", exclude={"secret"})


DEMO_CREDENTIAL = Credential(client_id="passport-demo", secret="passport-demo-secret")
"""The public demo credential every simulator accepts unless told otherwise."""


@dataclass(frozen=True)
class Token:
    access_token: str
    client_id: str
    api: Api
    scopes: frozenset[str]
    visible_schools: frozenset[str] | None
    expires_at: float
    """``time.time()`` after which the token is expired."""


class AuthError(Exception):
    """A refused token request or bearer check: an HTTP status and an OAuth-style error."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


class TokenExpired(Exception):
    """The bearer token was valid once; the server answers "Token has expired"."""


class Authority:
    """The credentials a server accepts and the tokens it has issued; thread-safe."""

    def __init__(self, credentials: Iterable[Credential], known_scopes: Iterable[str]) -> None:
        self.known_scopes = frozenset(known_scopes)
        self._lock = threading.Lock()
        self._credentials = {c.client_id: c for c in credentials}
        self._tokens: dict[str, Token] = {}

    def put_credential(self, credential: Credential) -> None:
        """Add a credential, or replace the one with the same client id."""
        with self._lock:
            self._credentials[credential.client_id] = credential

    def credentials(self) -> list[Credential]:
        with self._lock:
            return list(self._credentials.values())

    def client_credentials_grant(
        self, authorization: str | None, form: Mapping[str, str], today: dt.date, ttl: int
    ) -> Token:
        """``POST /oauth/token``: authenticate, check the grant and scopes, issue a token."""
        client_id, secret = _basic(authorization) or (
            form.get("client_id", ""), form.get("client_secret", "")
        )
        credential = self._authenticate(client_id, secret, today, status=401, error="invalid_client")
        grant_type = form.get("grant_type", "")
        if grant_type != "client_credentials":
            raise AuthError(
                400, "unsupported_grant_type",
                f"grant_type {grant_type!r} is not supported; use client_credentials",
            )
        allowed = self.known_scopes if credential.scopes is None else frozenset(credential.scopes)
        requested = form.get("scope", "").split()
        for scope in requested:
            if scope not in self.known_scopes:
                raise AuthError(400, "invalid_scope", f"Unknown scope: {scope}")
            if scope not in allowed:
                raise AuthError(400, "invalid_scope", f"Scope not allowed for this client: {scope}")
        return self._issue(credential, "oneroster", frozenset(requested) or allowed, ttl)

    def password_grant(
        self, authorization: str | None, form: Mapping[str, str], today: dt.date, ttl: int
    ) -> Token:
        """``POST /api/token`` (SMS 2.0): the OWIN password grant with the API key and secret."""
        if form.get("grant_type", "") != "password":
            raise AuthError(400, "unsupported_grant_type", "grant_type must be password")
        key, secret = _basic(authorization) or (form.get("username", ""), form.get("password", ""))
        if form.get("username", key) != key or form.get("password", secret) != secret:
            raise AuthError(400, "invalid_grant", "username and password do not match the key and secret")
        credential = self._authenticate(key, secret, today, status=400, error="invalid_grant")
        return self._issue(credential, "sms", frozenset(), ttl)

    def verify(self, authorization: str | None, api: Api) -> Token:
        """The token behind an ``Authorization: Bearer`` header, or why it is refused."""
        scheme, _, value = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthError(401, "invalid_request", "Authorization: Bearer <token> is required")
        with self._lock:
            token = self._tokens.get(value.strip())
        if token is None or token.api != api:
            raise AuthError(401, "invalid_token", "The access token is invalid")
        if time.time() >= token.expires_at:
            raise TokenExpired()
        return token

    def _authenticate(self, client_id: str, secret: str, today: dt.date, status: int, error: str) -> Credential:
        with self._lock:
            credential = self._credentials.get(client_id)
        if credential is None or not secrets.compare_digest(credential.secret.encode(), secret.encode()):
            raise AuthError(status, error, "Client authentication failed")
        if not credential.active:
            raise AuthError(status, error, "The integration access record for this client is inactive")
        if credential.effective_date and today < credential.effective_date:
            raise AuthError(
                status, error,
                f"The integration access record is not effective until {credential.effective_date}",
            )
        if credential.expiration_date and today > credential.expiration_date:
            raise AuthError(
                status, error, f"The integration access record expired on {credential.expiration_date}"
            )
        return credential

    def _issue(self, credential: Credential, api: Api, scopes: frozenset[str], ttl: int) -> Token:
        now = time.time()
        token = Token(
            access_token=secrets.token_urlsafe(32),
            client_id=credential.client_id,
            api=api,
            scopes=scopes,
            visible_schools=None if credential.school_ids is None else frozenset(credential.school_ids),
            expires_at=now + ttl,
        )
        with self._lock:
            if len(self._tokens) >= 10_000:
                self._tokens = {k: t for k, t in self._tokens.items() if t.expires_at > now - 3600}
            self._tokens[token.access_token] = token
        return token


def _basic(authorization: str | None) -> tuple[str, str] | None:
    """``(user, password)`` from an HTTP Basic header, or None when there is none."""
    scheme, _, value = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None
