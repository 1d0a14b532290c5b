"""Privacy by default, end to end: after a sync of the small district, Dagster's storage holds no
personal value unless ``privacy.previews`` allows it, never a masked one, and the warehouse is
readable by its owner only."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import stat
from pathlib import Path

import duckdb
import pytest

from passport_pipeline.simulator.server import running_simulator
from passport_pipeline.sync import run_sync

REPO = Path(__file__).resolve().parents[1]

CONFIG = """
warehouse: {warehouse}
{privacy}
sources:
  - name: sky
    app: skyward_oneroster
    base_url: {base_url}
    token_url: {base_url}/oauth/token
    credentials: {{client_id_env: SIM_ID, client_secret_env: SIM_SECRET}}
    http: {{max_retries: 1, backoff_base_s: 0.01, backoff_max_s: 0.02}}
    requirements:
      demographics: {{birth_date: mask}}
      students: {{email: mask}}
"""

PEOPLE = ("given_name", "family_name", "middle_name", "preferred_first_name", "username", "identifier",
          "state_id", "email", "sms", "phone")


def person_values(store: Path, where: str, columns=PEOPLE) -> set[str]:
    """Every value of ``columns`` of the district's users matching ``where``, as text."""
    with duckdb.connect(str(store), read_only=True) as con:
        rows = con.execute(f"SELECT {', '.join(columns)} FROM users WHERE {where}").fetchall()
    return {str(value) for row in rows for value in row if value is not None}


def demographic_values(store: Path) -> set[str]:
    """Birth dates, sexes and birthplaces of the district's students (race flags are true/false)."""
    with duckdb.connect(str(store), read_only=True) as con:
        rows = con.execute("SELECT birth_date, sex, city_of_birth, country_of_birth_code, state_of_birth_abbreviation"
                           " FROM demographics UNION ALL SELECT birth_date, NULL, NULL, NULL, NULL FROM users"
                           " WHERE birth_date IS NOT NULL").fetchall()
    return {str(value) for row in rows for value in row if value is not None}


def roster_text(store: Path) -> str:
    """The district's text that describes no person (school names, titles, dates): previews show it."""
    with duckdb.connect(str(store), read_only=True) as con:
        tables = ("orgs", "courses", "classes", "academic_sessions", "enrollments")
        return "\n".join(str(row) for table in tables for row in con.execute(f"SELECT * FROM {table}").fetchall())


def dagster_storage_text(home: Path) -> str:
    """Everything Dagster stored under ``home``: every text of every SQLite table, every other file."""
    texts = []
    for path in home.rglob("*"):
        if not path.is_file():
            continue
        if path.read_bytes()[:16] == b"SQLite format 3\x00":
            with sqlite3.connect(path) as con:
                for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
                    texts += [str(value) for row in con.execute(f'SELECT * FROM "{table}"') for value in row]
        else:
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(texts)


def found(values: set[str], text: str, allowed: str = "") -> set[str]:
    """The values that occur in ``text`` as a whole word, as written or JSON-escaped; values of
    fewer than 4 characters or occurring in ``allowed`` are not looked for."""
    hits = set()
    for value in values:
        if len(value) < 4 or value in allowed:
            continue
        forms = {value, json.dumps(value)[1:-1]}
        if any(form in text and re.search(rf"(?<!\w){re.escape(form)}(?!\w)", text) for form in forms):
            hits.add(value)
    return hits


@pytest.fixture
def synced(small_district, tmp_path, monkeypatch):
    """Run a sync of the small district with a persistent Dagster home; return what it stored."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("SIM_ID", "passport-demo")
    monkeypatch.setenv("SIM_SECRET", "passport-demo-secret")

    def sync(privacy: str = "", umask: int | None = None) -> str:
        with running_simulator(small_district, read_only=True) as sim:
            path = tmp_path / "passport.yaml"
            path.write_text(CONFIG.format(warehouse=tmp_path / "private" / "warehouse.duckdb",
                                          privacy=privacy, base_url=sim.base_url))
            monkeypatch.setenv("PASSPORT_CONFIG", str(path))
            previous = os.umask(umask) if umask is not None else None
            try:
                assert run_sync().success
            finally:
                if previous is not None:
                    os.umask(previous)
        return dagster_storage_text(home)

    return sync


def test_by_default_dagster_stores_no_name_contact_birth_date_or_demographic(synced, small_district):
    stored = synced()
    assert "| sis_id" in stored, "previews are stored, with ids"
    people = person_values(small_district, "true")
    assert len(people) > 1000
    allowed = roster_text(small_district)
    assert found(people, stored, allowed) == set()
    assert found(demographic_values(small_district), stored, allowed) == set()
    assert "9 personal attributes (privacy.previews is no_personal_data in passport.yaml); masked by the source's " \
           "requirements, never shown: birth_date, email" in stored, "a preview says what it leaves out, and why"


def test_personal_previews_show_names_but_never_a_masked_attribute(synced, small_district):
    stored = synced("privacy: {previews: personal_data}")
    allowed = roster_text(small_district)
    assert found(person_values(small_district, "role = 'student'", ["family_name"]), stored, allowed)
    assert found(person_values(small_district, "role <> 'student'", ["email"]), stored, allowed), \
        "a contact's e-mail is personal, not masked"
    assert found(person_values(small_district, "role = 'student'", ["email"]), stored, allowed) == set(), \
        "students' e-mail is masked: at no stage"
    with duckdb.connect(str(small_district), read_only=True) as con:
        births = {str(d) for (d,) in con.execute("SELECT birth_date FROM demographics WHERE birth_date IS NOT NULL"
                                                  " UNION SELECT birth_date FROM users WHERE birth_date IS NOT NULL").fetchall()}
    assert found(births, stored, allowed) == set(), "demographics' birth date is masked, so the student's is too"
    assert "masked by the source's requirements, never shown: birth_date" in stored


def test_the_warehouse_and_its_folder_are_owner_only_after_a_sync_under_umask_022(synced, tmp_path):
    synced(umask=0o022)
    folder = tmp_path / "private"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = list(folder.iterdir())
    assert folder / "warehouse.duckdb" in files
    assert {path.name: stat.S_IMODE(path.stat().st_mode) for path in files if path.is_file()} == {
        path.name: 0o600 for path in files if path.is_file()}
