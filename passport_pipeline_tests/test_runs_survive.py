"""Runs that survive (issue 9): a killed sync blocks no later one, a second sync is refused in one line
naming the first, every failure a person reads is one line with the cause and the fix, and Test
Connection works while a demo sync runs.

Real processes where it matters: ``passport-pipeline sync`` runs as a subprocess against the
simulator on loopback, and is killed with SIGKILL. The kill -9 variants are slow and carry the
``reliability`` marker (``make test-reliability``); ``warehouse/test_lock.py`` keeps a fast kill -9
of a writer in ``make test``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from passport_pipeline import cli
from passport_pipeline.simulator.server import running_simulator
from passport_pipeline_tests.defs.test_jobs import CONFIG

ROOT = Path(__file__).resolve().parents[1]

SECRET = "passport-demo-secret"


@pytest.fixture
def sim(small_district):
    with running_simulator(small_district, read_only=True) as simulator:
        yield simulator


@pytest.fixture
def configured(sim, tmp_path, monkeypatch) -> Path:
    """passport.yaml pointing at the simulator, and an ephemeral Dagster instance; the warehouse path."""
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("SIM_ID", "passport-demo")
    monkeypatch.setenv("SIM_SECRET", SECRET)
    write_config(tmp_path, sim.base_url, monkeypatch)
    return tmp_path / "warehouse.duckdb"


@pytest.fixture
def synced(configured) -> Path:
    """As ``configured``, with one good sync done."""
    assert cli.main(["sync"]) == 0
    return configured


def write_config(folder: Path, base_url: str, monkeypatch=None) -> Path:
    """passport.yaml syncing the server at ``base_url`` into ``folder/warehouse.duckdb`` (made current)."""
    path = folder / "passport.yaml"
    path.write_text(CONFIG.format(warehouse=folder / "warehouse.duckdb", base_url=base_url))
    if monkeypatch is not None:
        monkeypatch.setenv("PASSPORT_CONFIG", str(path))
    return path


def one_line(capsys) -> str:
    """What the command said on stderr: exactly one line, without a traceback."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def pulls(warehouse: Path) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute("SELECT run_id, status, error FROM sync.extractions ORDER BY started_at").fetchall()


# --- one-line failures -----------------------------------------------------------------------------


def test_a_wrong_secret_mid_sync_is_one_line_with_the_fix_and_fails_every_pull(synced, capsys, monkeypatch):
    monkeypatch.setenv("SIM_SECRET", "wrong-secret")
    assert cli.main(["sync"]) == 1, "the extraction broke off: a step failed"
    line = one_line(capsys)
    assert line.startswith("Run ") and " FAILED after " in line
    assert "Source 'sky': The token URL" in line and "rejected the client id/secret" in line
    assert "check SIM_ID and SIM_SECRET" in line and "have a new one issued" in line
    assert "wrong-secret" not in line
    run_id = line.split()[1]
    of_run = [(status, error) for run, status, error in pulls(synced) if run == run_id]
    assert of_run and {status for status, _ in of_run} == {"failed"}
    assert all("rejected the client id/secret" in error for _, error in of_run)
    assert "running" not in {status for _, status, _ in pulls(synced)}

    assert cli.main(["sync", "--debug"]) == 1
    err = capsys.readouterr().err
    assert "AuthenticationError" in err and ("Traceback" in err or "Stack Trace" in err)
    assert "rejected the client id/secret" in err.strip().splitlines()[-1]


def test_an_inactive_or_expired_credential_is_one_line_in_test_connections_words(synced, sim, capsys):
    for record, words in [({"active": False}, "is inactive"), ({"expiration_date": "2000-01-01"}, "has expired")]:
        sim.put_credential(client_id="passport-demo", secret=SECRET, **record)
        assert cli.main(["sync"]) == 1
        line = one_line(capsys)
        assert "Source 'sky': The credential" in line and words in line and "Skyward administrator" in line


def test_an_unreachable_server_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.setenv("SIM_ID", "passport-demo")
    monkeypatch.setenv("SIM_SECRET", SECRET)
    write_config(tmp_path, "http://127.0.0.1:9", monkeypatch)
    assert cli.main(["sync"]) == 1
    line = one_line(capsys)
    assert "Source 'sky': Could not reach http://127.0.0.1:9" in line and "check the URL" in line
    assert "running" not in {status for _, status, _ in pulls(tmp_path / "warehouse.duckdb")}


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full to make writes fail with ENOSPC")
def test_a_full_disk_is_one_line_and_the_next_sync_converges(synced, capsys):
    wal = synced.with_name(synced.name + ".wal")
    assert not wal.exists()
    wal.symlink_to("/dev/full")  # every write DuckDB commits now fails: "No space left on device"
    try:
        assert cli.main(["sync"]) == 1
        line = one_line(capsys)
    finally:
        wal.unlink(missing_ok=True)
    assert f"No space left on device: the disk holding {synced.parent} is full" in line
    assert "Free space there" in line
    assert cli.main(["sync"]) == 0
    assert "running" not in {status for _, status, _ in pulls(synced)}


HOLDER = textwrap.dedent("""
    import sys, time
    from passport_pipeline.warehouse.connection import Warehouse
    from passport_pipeline.warehouse.lock import Claim, Owner

    warehouse = Warehouse(sys.argv[1], Claim(Owner.this_process("passport-pipeline sync", run_id="run-first")))
    print("ready", flush=True)
    time.sleep(600)
""")


def test_a_busy_warehouse_fails_the_dagster_run_in_one_line_naming_the_holder(configured):
    from passport_pipeline.definitions import defs

    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(configured)], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = defs().resolve_job_def("sync").execute_in_process(
            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
            run_config={"resources": {"warehouse": {"config": {"wait_seconds": 0.5}}}})
    finally:
        holder.kill()
        holder.wait()
    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    message = failure.step_failure_data.user_failure_data.description
    assert "\n" not in message
    assert f"is in use by another sync, run run-first (passport-pipeline sync, pid {holder.pid}, since " in message
    assert f"kill {holder.pid}" in message


# --- a second sync, and stopping one ---------------------------------------------------------------


def sync_process(env: dict, folder: Path, *args: str) -> tuple[subprocess.Popen, Path, Path]:
    """``passport-pipeline sync`` as its own process; its stdout and stderr go to files."""
    out, err = folder / f"out-{time.monotonic_ns()}", folder / f"err-{time.monotonic_ns()}"
    process = subprocess.Popen([sys.executable, "-m", "passport_pipeline.cli", "sync", *args], cwd=ROOT, env=env,
                               stdout=out.open("w"), stderr=err.open("w"))
    return process, out, err


def process_env(folder: Path, config: Path) -> dict:
    home = folder / "dagster-home"
    home.mkdir(exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    return {**os.environ, "PASSPORT_CONFIG": str(config), "DAGSTER_HOME": str(home), "SIM_ID": "passport-demo",
            "SIM_SECRET": SECRET}


def holder_of(warehouse: Path, pid: int, timeout: float = 60) -> dict:
    """The lock file's owner once process ``pid`` holds the warehouse."""
    lock_file = warehouse.with_name(warehouse.name + ".lock")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            owner = json.loads(lock_file.read_text())
            if owner["pid"] == pid:
                return owner
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"process {pid} never took the warehouse")


def wait_for(path: Path, text: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text():
            return path.read_text()
        time.sleep(0.05)
    raise AssertionError(f"{text!r} never appeared in {path}: {path.read_text()}")


def test_a_second_sync_is_refused_in_one_line_naming_the_first_and_signals_stop_syncs(sim, tmp_path):
    sim.set_faults(latency_ms=300)  # the first sync is still extracting when the others come
    config = write_config(tmp_path, sim.base_url)
    env = process_env(tmp_path, config)
    first, _, first_err = sync_process(env, tmp_path)
    try:
        owner = holder_of(tmp_path / "warehouse.duckdb", first.pid)
        second, _, second_err = sync_process(env, tmp_path, "--wait", "1")
        third, _, third_err = sync_process(env, tmp_path)  # waits up to 60 s...
        assert second.wait(timeout=60) == 1
        *waiting, refusal = second_err.read_text().strip().splitlines()
        assert "Traceback" not in second_err.read_text() and len(waiting) <= 1
        assert refusal.startswith(f"The warehouse {tmp_path / 'warehouse.duckdb'} is in use by another sync, "
                                  f"run {owner['run_id']} (passport-pipeline sync, pid {first.pid}, since ")
        assert f"kill {first.pid}" in refusal
        wait_for(third_err, "waiting up to 60 s")
        third.send_signal(signal.SIGINT)  # ...and Ctrl-C stops it at once
        assert third.wait(timeout=5) == 130
        assert third_err.read_text().strip().splitlines()[-1] == "Stopped (Ctrl-C or SIGTERM)."
    finally:
        first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=20) == 130, first_err.read_text()
    assert "The sync was stopped (Ctrl-C or SIGTERM)" in first_err.read_text().strip().splitlines()[-1]
    assert "running" not in {status for _, status, _ in pulls(tmp_path / "warehouse.duckdb")}


# --- Test Connection while a demo sync runs ---------------------------------------------------------

EMBEDDED = """
warehouse: {warehouse}
simulator: {{seed: 7, students: 300, dirty: none}}
sources:
  - name: skyward
    app: skyward_oneroster
    base_url: embedded
"""

SERVING = textwrap.dedent("""
    import time
    from passport_pipeline.config import load_config
    from passport_pipeline.simulator.embedded import reachable

    with reachable(load_config()):
        print("ready", flush=True)
        time.sleep(600)
""")


@pytest.fixture
def embedded(tmp_path, monkeypatch):
    path = tmp_path / "passport.yaml"
    path.write_text(EMBEDDED.format(warehouse=tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("PASSPORT_CONFIG", str(path))
    monkeypatch.setenv("PASSPORT_SIMULATOR_DIR", str(tmp_path / "simulator"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return tmp_path


def test_test_connection_works_while_a_demo_sync_serves_the_embedded_district(embedded, capsys):
    from passport_pipeline.definitions import defs

    demo = subprocess.Popen([sys.executable, "-c", SERVING], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert demo.stdout.readline().strip() == "ready", "the sync's embedded simulator serves the district"
        assert cli.main(["test-connection"]) == 0
        assert "1 of 1 source usable" in capsys.readouterr().out
        assert defs().resolve_job_def("test_connection").execute_in_process(
            instance=dg.DagsterInstance.ephemeral()).success
    finally:
        demo.kill()
        demo.wait()


def test_a_district_another_simulator_writes_is_refused_in_one_line_saying_what_to_do(embedded, capsys):
    from passport_pipeline.simulator.district import DirtyData, district_file_name

    assert cli.main(["test-connection"]) == 0  # makes the embedded working copy
    capsys.readouterr()
    serving = embedded / "simulator" / f"embedded-{district_file_name(7, 300, DirtyData())}"
    code = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); time.sleep(600)"
    writer = subprocess.Popen([sys.executable, "-c", code, str(serving)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "ready"
        assert cli.main(["test-connection"]) == 1
        line = one_line(capsys)
    finally:
        writer.kill()
        writer.wait()
    assert f"The embedded demo district {serving} is open for writing by another process (pid {writer.pid}" in line
    assert "passport-pipeline simulate --store" in line


# --- kill -9 (reliability: slow) ----------------------------------------------------------------------


def picture(warehouse: Path) -> dict[str, list[tuple]]:
    """Every landed and staged table's rows, without what differs from run to run (run ids, times)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name <> 'sync'"
                             " ORDER BY ALL").fetchall()
        found = {}
        for schema, table in tables:
            columns = [name for (name,) in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ?"
                " AND column_name NOT IN ('run_id', 'extracted_at') ORDER BY column_index", [schema, table]).fetchall()]
            selected = ", ".join(f'"{name}"::VARCHAR' for name in columns)
            found[f"{schema}.{table}"] = con.execute(
                f'SELECT {selected} FROM "{schema}"."{table}" ORDER BY ALL').fetchall()
    return found


def sync_command(env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "passport_pipeline.cli", "sync"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.reliability
@pytest.mark.parametrize("kill_after, mid_extraction", [(2.5, True), (6.0, False)])
def test_a_killed_sync_blocks_no_later_one_and_the_rerun_converges(sim, tmp_path, monkeypatch, kill_after,
                                                                  mid_extraction):
    reference = tmp_path / "reference"
    reference.mkdir()
    assert sync_command(process_env(reference, write_config(reference, sim.base_url))).returncode == 0

    sim.set_faults(latency_ms=300)  # extraction takes a few seconds: killed in it, or later (rule stages)
    env = process_env(tmp_path, write_config(tmp_path, sim.base_url))
    warehouse = tmp_path / "warehouse.duckdb"
    killed, _, _ = sync_process(env, tmp_path)
    owner = holder_of(warehouse, killed.pid)
    time.sleep(kill_after)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    sim.clear_faults()

    started = time.monotonic()
    rerun = sync_command(env, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert time.monotonic() - started < 90
    rows = pulls(warehouse)
    if mid_extraction:
        assert "abandoned" in {status for run, status, _ in rows if run == owner["run_id"]}
    assert "running" not in {status for _, status, _ in rows}
    assert picture(warehouse) == picture(reference / "warehouse.duckdb")
    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
    with dg.DagsterInstance.get() as instance:
        assert instance.get_run_by_id(owner["run_id"]).status == dg.DagsterRunStatus.FAILURE


@pytest.mark.reliability
def test_a_second_sync_that_may_wait_long_enough_runs_after_the_first(sim, tmp_path):
    sim.set_faults(latency_ms=100)
    env = process_env(tmp_path, write_config(tmp_path, sim.base_url))
    first, _, _ = sync_process(env, tmp_path)
    owner = holder_of(tmp_path / "warehouse.duckdb", first.pid)
    second, second_out, second_err = sync_process(env, tmp_path, "--wait", "300")
    assert first.wait(timeout=300) == 0
    assert second.wait(timeout=300) == 0
    assert owner["run_id"] in second_err.read_text() and "waiting up to 300 s" in second_err.read_text()
    assert "succeeded" in second_out.read_text()
