"""The one line a person reads for a failure: operator-fixable causes are worded, bugs are not."""

import errno

import dagster as dg
import pytest

from passport_pipeline.failures import STOPPED, explain, failing_in_one_line
from passport_pipeline.warehouse.lock import Owner, WarehouseBusy


def test_a_full_disk_from_python_names_the_folder_and_the_fix(tmp_path):
    error = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "warehouse.duckdb.lock"))
    assert explain(RuntimeError("a bug")) is None
    assert explain(error) == (f"No space left on device: the disk holding {tmp_path} is full. Free space there (or "
                              "move the warehouse to a larger disk: passport.yaml's warehouse setting), then sync "
                              "again; every scope not finished keeps its previous data.")


def test_a_busy_warehouse_becomes_a_dagster_failure_with_its_line_and_a_bug_stays_itself(tmp_path):
    busy = WarehouseBusy(tmp_path, Owner(pid=42, what="passport-pipeline sync", since="2026-12-03T02:00:05+00:00",
                                         run_id="r1"), 60)
    with pytest.raises(dg.Failure) as failure:
        with failing_in_one_line():
            raise busy
    assert failure.value.description == str(busy)
    assert "run r1 (passport-pipeline sync, pid 42, since 2026-12-03 02:00:05 UTC)" in str(busy)
    with pytest.raises(KeyError):
        with failing_in_one_line():
            raise KeyError("a bug")


def test_a_stop_is_told_but_left_to_dagster():
    assert explain(KeyboardInterrupt()) == STOPPED
    with pytest.raises(KeyboardInterrupt):
        with failing_in_one_line():
            raise KeyboardInterrupt
