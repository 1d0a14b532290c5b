"""The canary secret: a credential no output may show, in any shape, after the runs a user makes.

A simulator whose error answers repeat the request's credentials (fault ``echo_credentials``)
serves a OneRoster and an SMS source, both configured with a unique canary client id and secret.
The command runs as a user runs it — a subprocess, with a real Dagster home — Test Connection and
a sync while the server refuses the secret; then, the secret accepted, Test Connection while every
data request fails (echoing the bearer token) and a sync that succeeds. The canary is then looked
for in every shape it travels in, and any bearer or Basic credential at all, in stdout and stderr,
every column of every warehouse table, and every file under the Dagster home (run and event
storage, compute logs) and the data folder. Nothing may be found.

The same runs in process with redaction switched off (nothing registered for scrubbing) must
find the canary in each of those places: the search can fail.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus

import duckdb
import pytest
import requests

from passport_pipeline import redaction
from passport_pipeline.simulator.auth import Credential
from passport_pipeline.simulator.server import running_simulator

REPO = Path(__file__).resolve().parents[1]
CANARY_ID = "canary-client-5Rk2"
CANARY = 'Canary/9Zq+v3 "kx"&=%~Wp7'
"""Characters that every encoding changes: ``/``, ``+``, space, quotes, ``&``, ``=``, ``%``."""
REFUSED = "not-the-canary-8Hs1"
CONFIG = """
warehouse: {data}/warehouse.duckdb
sources:
  - name: skyward
    app: skyward_oneroster
    base_url: {base_url}
    token_url: {base_url}/oauth/token
    credentials: {{client_id_env: CANARY_ID, client_secret_env: CANARY_SECRET}}
    http: {{max_retries: 1, backoff_base_s: 0.01, backoff_max_s: 0.02}}
  - name: sms
    app: skyward_sms
    base_url: {base_url}/api
    token_url: {base_url}/api/token
    credentials: {{client_id_env: CANARY_ID, client_secret_env: CANARY_SECRET}}
    entities: [schools, students]
    http: {{max_retries: 1, backoff_base_s: 0.01, backoff_max_s: 0.02}}
"""
FAILING_DATA = {"echo_credentials": True, "rate_limit_share": 1.0, "retry_after_seconds": 0}
"""Every data request answered 429, its error echoing the bearer token."""


def canary_shapes() -> dict[str, str]:
    """The canary as it can travel, worked out here, independently of the redaction module."""
    basic = f"{CANARY_ID}:{CANARY}".encode()
    escaped = json.dumps(CANARY)[1:-1]
    shapes = {"plain": CANARY, "url-encoded": quote(CANARY, safe=""), "form-encoded": quote_plus(CANARY),
              "JSON-escaped": escaped, "JSON-escaped twice": json.dumps(escaped)[1:-1]}
    for name, encode in (("base64", base64.b64encode), ("URL-safe base64", base64.urlsafe_b64encode)):
        shapes[f"{name} of id:secret"] = encode(basic).decode()
        shapes[f"{name} of id:secret, unpadded"] = encode(basic).decode().rstrip("=")
    return shapes


CREDENTIAL_HEADERS = re.compile(r"(Bearer|Basic)\s+[A-Za-z0-9+/_.~-]{12,}")
"""Any credential at all in a header's shape: a bearer token or HTTP Basic value."""


def leaks(text: str) -> list[str]:
    """What of the canary, or of any credential, ``text`` shows."""
    found = [name for name, shape in canary_shapes().items() if shape in text]
    return found + [match[0] for match in CREDENTIAL_HEADERS.finditer(text)]


def warehouse_text(path: Path) -> str:
    """Every value of every column of every table of the warehouse, as text."""
    texts = []
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
        for schema, table in tables:
            rows = con.execute(f'SELECT CAST(COLUMNS(*) AS VARCHAR) FROM "{schema}"."{table}"').fetchall()
            texts.append("\n".join(" ".join(str(value) for value in row) for row in rows))
    assert len(tables) > 10, "the warehouse holds the sync's tables"
    return "\n".join(texts)


def files_text(*folders: Path) -> dict[str, str]:
    """Every file under ``folders``, as text (bytes that are not UTF-8 kept as escapes)."""
    return {str(path): path.read_bytes().decode("utf-8", "backslashreplace")
            for folder in folders for path in folder.rglob("*") if path.is_file()}


def leaks_in_files(*folders: Path) -> dict[str, list[str]]:
    return {path: found for path, text in files_text(*folders).items() if (found := leaks(text))}


@pytest.fixture
def canary_sim(small_district, tmp_path):
    """The simulator, echoing credentials in its errors, with the canary's record refusing its secret."""
    with running_simulator(small_district, read_only=True, faults={"echo_credentials": True},
                           credentials=[Credential(client_id=CANARY_ID, secret=REFUSED)]) as sim:
        yield sim


@pytest.fixture
def home(canary_sim, tmp_path) -> dict[str, Path]:
    """passport.yaml, the data folder and the Dagster home of the runs."""
    data, dagster_home = tmp_path / "data", tmp_path / "dagster_home"
    data.mkdir()
    dagster_home.mkdir()
    shutil.copy(REPO / "dagster.yaml", dagster_home / "dagster.yaml")
    config = tmp_path / "passport.yaml"
    config.write_text(CONFIG.format(data=data, base_url=canary_sim.base_url))
    return {"config": config, "data": data, "dagster_home": dagster_home}


def test_the_simulator_echoes_the_credentials_a_refused_request_sent(canary_sim):
    form = {"grant_type": "password", "username": CANARY_ID, "password": CANARY}
    refused = requests.post(canary_sim.sms_token_url, auth=(CANARY_ID, CANARY), data=form, timeout=10)
    assert refused.status_code == 400
    said = refused.json()["error_description"]
    assert canary_shapes()["base64 of id:secret"] in said and quote_plus(CANARY) in said

    canary_sim.set_faults(**FAILING_DATA)
    failing = requests.get(canary_sim.oneroster_url() + "/students", headers={"Authorization": "Bearer tok-123"},
                           timeout=10)
    assert failing.status_code == 429 and "Bearer tok-123" in failing.text


def test_the_canary_secret_shows_nowhere_after_failing_and_succeeding_runs(canary_sim, home):
    env = {**os.environ, "PASSPORT_CONFIG": str(home["config"]), "DAGSTER_HOME": str(home["dagster_home"]),
           "CANARY_ID": CANARY_ID, "CANARY_SECRET": CANARY}
    env.pop("PASSPORT_WAREHOUSE", None)

    def command(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "passport_pipeline.cli", *args], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=600)
        printed[" ".join(args) + f" #{len(printed)}"] = done.stdout + "\n" + done.stderr
        return done

    printed: dict[str, str] = {}
    refused = command("test-connection")
    assert refused.returncode == 1 and "rejected the client id/secret" in refused.stdout, refused.stdout
    assert "invalid_grant" in refused.stdout, "the SMS source was refused too (its echo holds the form)"
    assert command("sync").returncode != 0

    canary_sim.put_credential(client_id=CANARY_ID, secret=CANARY)
    canary_sim.set_faults(**FAILING_DATA)
    failing = command("test-connection")
    assert failing.returncode == 1 and "kept failing with 429" in failing.stdout, failing.stdout
    assert "Authorization: Bearer ***" in failing.stdout, "the server echoed the token, scrubbed"
    canary_sim.set_faults(echo_credentials=True)
    synced = command("sync")
    assert synced.returncode == 0, synced.stdout + synced.stderr

    assert {run: found for run, text in printed.items() if (found := leaks(text))} == {}
    assert leaks(warehouse_text(home["data"] / "warehouse.duckdb")) == []
    assert leaks_in_files(home["dagster_home"], home["data"]) == {}
    assert list(home["dagster_home"].rglob("compute_logs/*.err")), "compute logs were searched"


def test_with_redaction_switched_off_the_canary_is_found_everywhere(canary_sim, home, monkeypatch, capsys):
    """The search above can fail: nothing registered for scrubbing, the same runs leak in each place."""
    from passport_pipeline import cli

    monkeypatch.setattr(redaction, "encodings", lambda secret, client_id=None: set())
    for name, value in {"PASSPORT_CONFIG": home["config"], "DAGSTER_HOME": home["dagster_home"],
                        "CANARY_ID": CANARY_ID, "CANARY_SECRET": CANARY}.items():
        monkeypatch.setenv(name, str(value))

    assert cli.main(["test-connection"]) == 1
    assert cli.main(["sync"]) != 0
    printed = capsys.readouterr()

    assert "base64 of id:secret" in leaks(printed.out)
    assert "form-encoded" in leaks(printed.out), "the SMS grant's form, echoed"
    assert "base64 of id:secret" in leaks(warehouse_text(home["data"] / "warehouse.duckdb"))
    stored = leaks_in_files(home["dagster_home"])
    assert any(path.endswith(".db") for path in stored), "Dagster's event storage holds it"
