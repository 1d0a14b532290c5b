"""The warehouse's writer lock, against real processes: a dead writer blocks nobody, a live one is
named, and the pulls a dead writer left running end abandoned."""

import fcntl
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from passport_pipeline.warehouse.connection import Warehouse
from passport_pipeline.warehouse.lock import Claim, Owner, WarehouseBusy
from passport_pipeline.warehouse.raw import Extraction, raw_table

ROOT = Path(__file__).resolve().parents[2]

HOLDER = textwrap.dedent("""
    import json, sys, time
    from passport_pipeline.warehouse.connection import Warehouse
    from passport_pipeline.warehouse.lock import Claim, Owner
    from passport_pipeline.warehouse.raw import Extraction

    warehouse = Warehouse(sys.argv[1], Claim(Owner.this_process("test holder", run_id="run-dead")))
    pull = Extraction(warehouse, run_id="run-dead", source="sky", entity="schools", scope="A")
    pull.write_page([{"sis_id": "partial", "payload": json.dumps({"sourcedId": "partial"})}])
    pull._flush()
    print("ready", flush=True)
    time.sleep(float(sys.argv[2]))
    warehouse.close()
""")


def hold(path: Path, seconds: float = 600) -> subprocess.Popen:
    """A process that writes the warehouse: one pull running, with a partial row landed."""
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), str(seconds)], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    return process


@pytest.fixture
def warehouse_path(tmp_path) -> Path:
    """A warehouse whose scope A of sky schools holds one complete pull's row."""
    path = tmp_path / "warehouse.duckdb"
    with Warehouse(path) as warehouse:
        pull = Extraction(warehouse, run_id="run-ok", source="sky", entity="schools", scope="A")
        pull.write_page([{"sis_id": "kept", "payload": json.dumps({"sourcedId": "kept"})}])
        pull.complete()
    return path


def test_a_writer_killed_holding_the_warehouse_blocks_nobody_and_its_pulls_end_abandoned(warehouse_path):
    holder = hold(warehouse_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    died = []
    started = time.monotonic()
    with Warehouse(warehouse_path, Claim(wait_seconds=10, took_over=died.append)) as warehouse:
        assert time.monotonic() - started < 5
        pulls = warehouse.reading().execute(
            "SELECT run_id, status, error FROM sync.extractions ORDER BY run_id").fetchall()
        landed = warehouse.reading().execute(f"SELECT sis_id FROM {raw_table('sky', 'schools')}").fetchall()
    assert [(run, status) for run, status, _ in pulls] == [("run-dead", "abandoned"), ("run-ok", "complete")]
    assert "ended before the pull did" in pulls[0][2]
    assert landed == [("kept",)], "the dead pull's partial row is dropped; the scope keeps its previous data"
    assert [(owner.pid, owner.run_id, owner.what) for owner in died] == [(holder.pid, "run-dead", "test holder")]


def test_a_second_writer_waits_then_is_refused_in_one_line_naming_the_first(warehouse_path):
    holder = hold(warehouse_path)
    told = []
    try:
        started = time.monotonic()
        with pytest.raises(WarehouseBusy) as refused:
            Warehouse(warehouse_path, Claim(wait_seconds=0.5, waiting=told.append))
        assert 0.5 <= time.monotonic() - started < 3
    finally:
        holder.kill()
        holder.wait()
    message = str(refused.value)
    assert "\n" not in message
    assert f"run run-dead (test holder, pid {holder.pid}, since " in message
    assert f"kill {holder.pid}" in message and "then sync again" in message
    assert len(told) == 1 and "run-dead" in told[0] and "waiting up to" in told[0]


def test_a_writer_that_finishes_in_time_lets_the_waiting_one_in_and_is_no_dead_writer(warehouse_path):
    holder = hold(warehouse_path, seconds=1)
    died = []
    with Warehouse(warehouse_path, Claim(wait_seconds=30, took_over=died.append)) as warehouse:
        (status,) = warehouse.reading().execute(
            "SELECT status FROM sync.extractions WHERE run_id = 'run-dead'").fetchone()
    holder.wait()
    assert died == []
    assert status == "abandoned", "its pull was never ended: nobody lands it any more"


def test_the_lock_is_shared_within_a_process_and_freed_with_its_last_holder(warehouse_path):
    lock_file = warehouse_path.with_name(warehouse_path.name + ".lock")
    first = Warehouse(warehouse_path, Claim(Owner.this_process("first", run_id="r1")))
    Warehouse(warehouse_path).close()  # another holder in this process comes and goes
    assert json.loads(lock_file.read_text())["run_id"] == "r1"
    assert not lock_is_free(lock_file)
    first.close()
    assert lock_file.read_text() == "", "a clean end empties the lock file"
    assert lock_is_free(lock_file)


def test_a_warehouse_that_cannot_be_opened_lets_go_of_the_lock(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    path.write_text("this is no DuckDB file")
    with pytest.raises(duckdb.Error):
        Warehouse(path)
    assert lock_is_free(path.with_name(path.name + ".lock"))


def test_a_program_outside_the_pipeline_holding_the_file_is_named(warehouse_path):
    code = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); time.sleep(600)"
    shell = subprocess.Popen([sys.executable, "-c", code, str(warehouse_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert shell.stdout.readline().strip() == "ready"
        with pytest.raises(WarehouseBusy) as refused:
            Warehouse(warehouse_path, Claim(wait_seconds=0.3))
    finally:
        shell.kill()
        shell.wait()
    assert f"another program (pid {shell.pid}, " in str(refused.value)
    assert "Close that program" in str(refused.value)
    assert lock_is_free(warehouse_path.with_name(warehouse_path.name + ".lock"))


def lock_is_free(lock_file: Path) -> bool:
    """Whether nobody holds the OS lock (this process included: another descriptor conflicts too)."""
    fd = os.open(lock_file, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
