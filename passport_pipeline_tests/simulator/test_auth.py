"""Credentials and tokens: what the token endpoints grant or refuse, and bearer checks."""

import base64
import datetime as dt
import time

import pytest

from passport_pipeline.simulator.auth import AuthError, Authority, Credential, TokenExpired

CORE = "https://purl.imsglobal.org/spec/or/v1p1/scope/roster-core.readonly"
ROSTER = "https://purl.imsglobal.org/spec/or/v1p1/scope/roster.readonly"
DEMOGRAPHICS = "https://purl.imsglobal.org/spec/or/v1p1/scope/roster-demographics.readonly"
TODAY = dt.date(2026, 9, 1)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def authority() -> Authority:
    return Authority(
        [
            Credential(client_id="district", secret="s3cret"),
            Credential(client_id="core-only", secret="x", scopes=[CORE]),
            Credential(client_id="off", secret="x", active=False),
            Credential(client_id="future", secret="x", effective_date=dt.date(2026, 10, 1)),
            Credential(client_id="past", secret="x", expiration_date=dt.date(2026, 8, 31)),
            Credential(client_id="north", secret="x", school_ids=["sch-1"]),
        ],
        known_scopes=[CORE, ROSTER, DEMOGRAPHICS],
    )


def grant(authority, user, password, ttl=60, **form):
    form = {"grant_type": "client_credentials", **form}
    return authority.client_credentials_grant(basic(user, password), form, TODAY, ttl)


def refusal(call) -> AuthError:
    with pytest.raises(AuthError) as caught:
        call()
    return caught.value


def test_client_credentials_without_scope_grants_every_allowed_scope(authority):
    token = grant(authority, "district", "s3cret")
    assert token.scopes == {CORE, ROSTER, DEMOGRAPHICS}
    assert token.api == "oneroster" and token.visible_schools is None
    assert authority.verify(f"Bearer {token.access_token}", "oneroster") == token


def test_requested_scopes_are_granted_exactly(authority):
    assert grant(authority, "district", "s3cret", scope=f"{CORE} {ROSTER}").scopes == {CORE, ROSTER}


def test_secret_may_come_in_the_form(authority):
    form = {"grant_type": "client_credentials", "client_id": "district", "client_secret": "s3cret"}
    assert authority.client_credentials_grant(None, form, TODAY, 60).client_id == "district"


@pytest.mark.parametrize(
    ("user", "password", "expected"),
    [
        ("district", "wrong", "Client authentication failed"),
        ("nobody", "s3cret", "Client authentication failed"),
        ("off", "x", "inactive"),
        ("future", "x", "not effective until 2026-10-01"),
        ("past", "x", "expired on 2026-08-31"),
    ],
)
def test_refusals_tell_wrong_secret_from_inactive_and_dated_records(authority, user, password, expected):
    error = refusal(lambda: grant(authority, user, password))
    assert (error.status, error.error) == (401, "invalid_client")
    assert expected in error.description


def test_credential_dates_follow_the_simulated_date(authority):
    later = dt.date(2026, 10, 2)
    form = {"grant_type": "client_credentials"}
    assert authority.client_credentials_grant(basic("future", "x"), form, later, 60).client_id == "future"


def test_unsupported_grant_and_scopes_are_400(authority):
    error = refusal(lambda: grant(authority, "district", "s3cret", grant_type="password"))
    assert (error.status, error.error) == (400, "unsupported_grant_type")
    error = refusal(lambda: grant(authority, "core-only", "x", scope=DEMOGRAPHICS))
    assert (error.status, error.error) == (400, "invalid_scope") and DEMOGRAPHICS in error.description
    error = refusal(lambda: grant(authority, "district", "s3cret", scope="made-up"))
    assert error.error == "invalid_scope" and "made-up" in error.description


def test_restricted_credential_tokens_carry_their_schools(authority):
    assert grant(authority, "north", "x").visible_schools == {"sch-1"}


def test_password_grant_for_the_native_api(authority):
    form = {"grant_type": "password", "username": "district", "password": "s3cret"}
    token = authority.password_grant(basic("district", "s3cret"), form, TODAY, 60)
    assert token.api == "sms"
    assert authority.password_grant(None, form, TODAY, 60).client_id == "district"
    error = refusal(lambda: authority.password_grant(None, {**form, "password": "no"}, TODAY, 60))
    assert (error.status, error.error) == (400, "invalid_grant")
    error = refusal(lambda: authority.password_grant(basic("off", "x"), {"grant_type": "password"}, TODAY, 60))
    assert "inactive" in error.description


def test_bearer_checks(authority):
    token = grant(authority, "district", "s3cret")
    for header in (None, "Bearer ", "Basic abc", "Bearer nope"):
        assert refusal(lambda: authority.verify(header, "oneroster")).status == 401
    # a OneRoster token is no good on the native API: different servers in real life
    assert refusal(lambda: authority.verify(f"Bearer {token.access_token}", "sms")).status == 401


def test_tokens_expire_after_their_ttl(authority):
    token = grant(authority, "district", "s3cret", ttl=0)
    time.sleep(0.01)
    with pytest.raises(TokenExpired):
        authority.verify(f"Bearer {token.access_token}", "oneroster")


def test_credentials_can_be_replaced_and_listed_without_secrets(authority):
    authority.put_credential(Credential(client_id="district", secret="s3cret", active=False))
    assert "inactive" in refusal(lambda: grant(authority, "district", "s3cret")).description
    listed = {c.client_id: c.public() for c in authority.credentials()}
    assert "secret" not in listed["district"] and listed["district"]["active"] is False
