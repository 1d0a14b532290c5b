"""Owner-only files: the warehouse, its WAL and its folder, whatever the umask; older ones tightened."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys

import duckdb
import pytest

from passport_pipeline.warehouse.connection import Warehouse
from passport_pipeline.warehouse.private import owner_only_files, private_folder


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_a_new_warehouse_and_its_new_folder_are_owner_only_under_umask_022(tmp_path, umask_022, caplog):
    path = tmp_path / "new" / "warehouse.duckdb"
    with Warehouse(path) as warehouse, warehouse.writing() as con:
        con.execute("CREATE TABLE raw.t AS SELECT 'Ana' AS given_name")
    assert (mode(path.parent), mode(path)) == (0o700, 0o600)
    assert not caplog.records


def test_files_created_inside_owner_only_files_are_private_and_the_umask_comes_back(tmp_path, umask_022):
    with owner_only_files():
        (tmp_path / "export.csv").write_text("sis_id\n")
        duckdb.connect(str(tmp_path / "copy.duckdb")).close()
    (tmp_path / "after.txt").write_text("")
    assert (mode(tmp_path / "export.csv"), mode(tmp_path / "copy.duckdb"), mode(tmp_path / "after.txt")) == \
           (0o600, 0o600, 0o644)


def test_an_existing_warehouse_readable_by_others_is_tightened_on_open_with_one_log_line(tmp_path, umask_022, caplog):
    folder = tmp_path / "data"
    folder.mkdir(mode=0o755)
    path, wal = folder / "warehouse.duckdb", folder / "warehouse.duckdb.wal"
    killed = ("import duckdb, os, sys; con = duckdb.connect(sys.argv[1]);"
              " con.execute(\"CREATE TABLE t AS SELECT 'Ana' AS given_name\"); os._exit(9)")
    subprocess.run([sys.executable, "-c", killed, str(path)], check=False)
    assert (mode(folder), mode(path), mode(wal)) == (0o755, 0o644, 0o644), "as a killed older version left them"
    with caplog.at_level(logging.WARNING):
        Warehouse(path).close()
    assert (mode(folder), mode(path)) == (0o700, 0o600)
    (line,) = [record.getMessage() for record in caplog.records]
    assert line == (f"warehouse {path} was open to other users: folder {folder} made owner-only (0755 -> 0700); "
                    "warehouse.duckdb made owner-only (0644 -> 0600); warehouse.duckdb.wal made owner-only "
                    "(0644 -> 0600)")
    caplog.clear()
    Warehouse(path).close()
    assert not caplog.records, "nothing to say once private"


def test_a_shared_folder_is_left_as_it_is_and_said(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    line = private_folder(shared)
    assert mode(shared) == 0o1777
    assert line.startswith(f"its folder {shared} (mode 1777) is not this user's own and was left as it is")
