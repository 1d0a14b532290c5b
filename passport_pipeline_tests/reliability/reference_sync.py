"""A sync of one API, and the reference it must give: what the fault and crash suites share.

A sync here is ``passport-pipeline sync`` itself (in this process, or as a subprocess where it
is killed) over the small district, with one source of one API: OneRoster 1.1, OneRoster 1.2 or
the SMS native API. The **reference** of an API is the warehouse a clean sync leaves; its
**picture** is every raw and staging table's rows, values as text, without what differs from
run to run (run ids, extraction times). A faulty or killed sync starts from a copy of the
reference warehouse — the previous picture it must keep — and must end with the same picture.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from passport_pipeline import cli

APIS = ("oneroster-1.1", "oneroster-1.2", "sms")
ONEROSTER = ("oneroster-1.1", "oneroster-1.2")
SECRET = "passport-demo-secret"
ENV = {"SIM_ID": "passport-demo", "SIM_SECRET": SECRET}
ALL = ("schools", "terms", "courses", "classes", "students", "staff", "contacts", "student_contacts",
       "enrollments", "demographics")
CREDENTIAL_HEADERS = re.compile(r"(Bearer|Basic)\s+[A-Za-z0-9+/_.~-]{12,}")
"""A bearer token or HTTP Basic value, as a server that echoes credentials repeats them."""

SOURCES = {
    "oneroster-1.1": "app: skyward_oneroster\n    oneroster_version: '1.1'\n"
                     "    base_url: {base}\n    token_url: {base}/oauth/token",
    "oneroster-1.2": "app: skyward_oneroster\n    oneroster_version: '1.2'\n"
                     "    base_url: {base}\n    token_url: {base}/oauth/token",
    "sms": "app: skyward_sms\n    base_url: {base}/api\n    token_url: {base}/api/token",
}
CONFIG = """
warehouse: {warehouse}
sources:
  - name: sky
    {source}
    credentials: {{client_id_env: SIM_ID, client_secret_env: SIM_SECRET}}
    http: {http}
"""
HTTP = {"page_size": 100, "max_retries": 5, "backoff_base_s": 0.01, "backoff_max_s": 0.05}
"""Pages of 100 records, so that a sync makes a hundred-odd requests for faults to hit; retries
that wait little (a ``Retry-After`` still waits what it says)."""


def write_config(folder: Path, api: str, base_url: str, **http) -> Path:
    """``folder/passport.yaml``: one source ``sky`` of ``api`` at ``base_url``, into
    ``folder/warehouse.duckdb``; ``http`` overrides :data:`HTTP`."""
    path = folder / "passport.yaml"
    path.write_text(CONFIG.format(warehouse=folder / "warehouse.duckdb", source=SOURCES[api].format(base=base_url),
                                  http=json.dumps({**HTTP, **http})))
    return path


@dataclass(frozen=True)
class Synced:
    """How a ``passport-pipeline sync`` ended: its exit status, its run and what it printed."""

    code: int
    out: str
    err: str

    @property
    def run_id(self) -> str:
        said = (self.out or self.err).split()
        assert said[:1] == ["Run"], f"no run was started: {self.err}"
        return said[1]


def sync(config: Path, dagster_home: Path | None = None) -> Synced:
    """``passport-pipeline sync`` of ``config``, in this process, with the Dagster instance of
    ``dagster_home`` (default: an ephemeral one)."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as env:
        if dagster_home is None:
            env.delenv("DAGSTER_HOME", raising=False)
        else:
            env.setenv("DAGSTER_HOME", str(dagster_home))
        env.setenv("PASSPORT_CONFIG", str(config))
        for name, value in ENV.items():
            env.setenv(name, value)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(["sync"])
    return Synced(code, out.getvalue(), err.getvalue())


LOOPBACK = r"http://127\.0\.0\.1:[0-9]+"


def picture(warehouse: Path) -> dict[str, list[tuple]]:
    """Every raw and staging table's (and view's) rows, as text and sorted, without run ids and
    extraction times, and with the address the server was reached at (which its records' links
    repeat) as ``http://server``: a sync through a proxy reads the same records."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        relations = con.execute(
            "SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name IN ('raw', 'staging')"
            " UNION ALL SELECT schema_name, view_name FROM duckdb_views()"
            " WHERE schema_name IN ('raw', 'staging') AND NOT internal ORDER BY ALL").fetchall()
        found = {}
        for schema, name in relations:
            columns = [column for (column,) in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ?"
                " AND column_name NOT IN ('run_id', 'extracted_at') ORDER BY column_index", [schema, name]).fetchall()]
            selected = ", ".join(f"regexp_replace(\"{column}\"::VARCHAR, '{LOOPBACK}', 'http://server', 'g')"
                                 for column in columns)
            rows = con.execute(f'SELECT {selected} FROM "{schema}"."{name}" ORDER BY ALL').fetchall()
            found[f"{schema}.{name}"] = rows
    return found


def assert_same_picture(found: dict[str, list[tuple]], reference: dict[str, list[tuple]]) -> None:
    """Table by table, so that a difference names its table."""
    assert sorted(found) == sorted(reference)
    for table in reference:
        assert found[table] == reference[table], f"{table} differs from the reference"


def pulls(warehouse: Path, run_id: str | None = None) -> list[tuple[str, str, str, str | None]]:
    """``(entity, scope, status, error)`` of every pull (of ``run_id`` when given)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute("SELECT entity, scope, status, error FROM sync.extractions"
                           " WHERE $run IS NULL OR run_id = $run ORDER BY ALL", {"run": run_id}).fetchall()


def raw_runs(warehouse: Path) -> set[str]:
    """The runs whose rows the raw tables hold."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'raw'").fetchall()
        return {run for (table,) in tables
                for (run,) in con.execute(f'SELECT DISTINCT run_id FROM raw."{table}"').fetchall()}


@dataclass(frozen=True)
class Reference:
    """A clean sync of one API: its warehouse (never written again) and its picture."""

    warehouse: Path
    picture: dict[str, list[tuple]]

    def copy_to(self, folder: Path) -> Path:
        """The reference warehouse copied into ``folder``, where a sync of ``folder``'s config writes."""
        target = folder / "warehouse.duckdb"
        for suffix in ("", ".wal"):
            source = self.warehouse.with_name(self.warehouse.name + suffix)
            if source.exists():
                shutil.copy(source, target.with_name(target.name + suffix))
        return target


def assert_survived_or_failed_cleanly(done: Synced, warehouse: Path, before: Reference, fails: tuple[str, ...] = (),
                                      why: str = "") -> None:
    """The sync ``done`` over a copy of ``before`` either survived — exit 0, every pull complete,
    every raw row read again by it — or, when ``fails`` names entities, failed cleanly: exit 3,
    every scope of those entities ``failed`` with ``why`` in its reason, every other pull
    complete. Either way no pull is left running, no credential is shown or stored, and every
    raw and staging table is exactly the reference."""
    of_run = pulls(warehouse, done.run_id)
    assert of_run, done.err
    assert "running" not in {status for _, _, status, _ in pulls(warehouse)}
    if fails:
        assert done.code == 3, done.err
        assert "INCOMPLETE" in done.out
        failed = {(entity, scope): error for entity, scope, status, error in of_run if status == "failed"}
        assert {entity for entity, _ in failed} == set(fails) & {entity for entity, *_ in of_run}
        assert all(status == "failed" for entity, _, status, _ in of_run if entity in fails)
        assert all(status == "complete" for entity, _, status, _ in of_run if entity not in fails)
        assert all(why in error for error in failed.values()), next(iter(failed.values()))
    else:
        assert done.code == 0, done.err + done.out
        assert {status for _, _, status, _ in of_run} == {"complete"}
        assert raw_runs(warehouse) == {done.run_id}, "every raw row must have been read again by this run"
    shown = done.out + done.err + "".join(error or "" for *_, error in of_run)
    assert not CREDENTIAL_HEADERS.search(shown), "a credential the server echoed was shown or stored"
    assert_same_picture(picture(warehouse), before.picture)
