"""One redaction function: every registered secret, in every shape it travels in, scrubbed at each exit."""

from __future__ import annotations

import base64
import io
import json
import re
import sys
import traceback
from urllib.parse import quote, quote_plus, urlencode

import pytest

from passport_pipeline.redaction import MASK, ScrubbedStream, remember, scrub, scrubbed_stdio
from passport_pipeline.sources.errors import AuthenticationError, describe_error

CLIENT_ID = "district-sync-01"
SECRET = "s3cr3t/Value+9 \"q\"&=%é~"


@pytest.fixture
def remembered() -> None:
    remember(SECRET, client_id=CLIENT_ID)


def basic(user: str, charset: str = "utf-8") -> list[str]:
    raw = f"{user}:{SECRET}".encode(charset)
    return [value for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw))
            for value in (encoded.decode(), encoded.decode().rstrip("="))]


@pytest.mark.parametrize("shape", [
    SECRET, quote(SECRET, safe=""), quote(SECRET), quote_plus(SECRET),
    re.sub("%[0-9A-F]{2}", lambda digits: digits[0].lower(), quote_plus(SECRET)),
    json.dumps(SECRET)[1:-1], json.dumps(SECRET, ensure_ascii=False)[1:-1], json.dumps(json.dumps(SECRET)[1:-1])[1:-1],
    "s3cr3t/Value+9 &quot;q&quot;&amp;=%é~", *basic(CLIENT_ID), *basic(CLIENT_ID, "latin-1"),
])
def test_every_shape_of_a_remembered_secret_is_scrubbed(remembered, shape):
    assert SECRET not in shape or shape == SECRET
    assert scrub(f"the server said: {shape}!") == f"the server said: {MASK}!"


@pytest.mark.parametrize("user", ["a", "ab", "abc", "someone-else"])
def test_the_secret_is_scrubbed_inside_any_base64_blob(remembered, user):
    for encoded in basic(user):
        scrubbed = scrub(f"Authorization: Basic {encoded}")
        assert MASK in scrubbed and base64.b64encode(SECRET.encode()[3:12]).decode()[:8] not in scrubbed
        assert len(scrubbed) < len(encoded), "all but a few characters around the secret are gone"


def test_a_form_body_and_a_bearer_header_are_scrubbed():
    remember("tok-AbC123_xyz-987")
    remember(SECRET, client_id=CLIENT_ID)
    form = urlencode({"grant_type": "password", "username": CLIENT_ID, "password": SECRET})
    assert scrub(form) == f"grant_type=password&username={CLIENT_ID}&password={MASK}"
    assert scrub("Authorization: Bearer tok-AbC123_xyz-987") == f"Authorization: Bearer {MASK}"


def test_nothing_registered_changes_nothing_and_short_values_are_no_secrets():
    text = "check the client id and secret"
    assert scrub(text) == text
    remember("abc")
    remember(None)
    remember("")
    assert scrub("abc " + text) == "abc " + text


def test_a_source_error_is_scrubbed_as_it_is_made_and_a_server_body_before_it_is_read(remembered):
    echoed = json.dumps({"error": "invalid_client",
                         "error_description": f"refused: Basic {basic(CLIENT_ID)[0]} " + "x" * 300})
    said = describe_error(echoed.encode())
    assert said.code == "invalid_client" and basic(CLIENT_ID)[0] not in said.text and MASK in said.text
    truncated = describe_error(f"<html><body>{'y' * 190} {SECRET} {'z' * 50}</body></html>")
    assert "s3cr3t" not in truncated.text, "scrubbed before it is cut short, so no part of it is left"
    assert str(AuthenticationError(f"refused ({SECRET})")) == f"refused ({MASK})"


def test_a_stream_scrubs_a_secret_split_over_writes_of_one_line(remembered):
    out = io.StringIO()
    stream = ScrubbedStream(out)
    stream.write("first " + SECRET[:5])
    stream.write(SECRET[5:] + " last\nnext ")
    assert out.getvalue() == f"first {MASK} last\n"
    stream.writelines([SECRET, "\n"])
    stream.flush()
    assert out.getvalue() == f"first {MASK} last\nnext {MASK}\n"


def test_what_a_command_prints_or_shows_in_a_traceback_is_scrubbed(remembered, capsys):
    real = sys.stdout, sys.stderr

    @scrubbed_stdio()
    def command() -> None:
        print(f"secret: {SECRET}")
        try:
            raise RuntimeError(f"broken with {quote_plus(SECRET)}")
        except RuntimeError:
            traceback.print_exc()

    command()
    printed = capsys.readouterr()
    assert printed.out == f"secret: {MASK}\n"
    assert f"RuntimeError: broken with {MASK}" in printed.err and quote_plus(SECRET) not in printed.err
    assert (sys.stdout, sys.stderr) == real, "the streams are given back"
