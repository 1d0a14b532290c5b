"""The warehouse connection: a transaction kept open across writes, beside other threads' writes."""

import threading

import pytest

from passport_pipeline.warehouse.connection import Warehouse


@pytest.fixture
def warehouse(tmp_path):
    with Warehouse(tmp_path / "warehouse.duckdb") as wh:
        with wh.writing() as con:
            con.execute("CREATE TABLE raw.t (v VARCHAR)")
        yield wh


def values(warehouse) -> list[str]:
    return [v for (v,) in warehouse.reading().execute("SELECT v FROM raw.t ORDER BY v").fetchall()]


def test_a_transaction_is_seen_by_others_only_once_committed(warehouse):
    transaction = warehouse.transaction()
    for value in ("a", "b"):
        with transaction.writing() as con:
            con.execute("INSERT INTO raw.t VALUES (?)", [value])
    with warehouse.writing() as con:  # another writer goes on meanwhile
        con.execute("INSERT INTO raw.t VALUES ('other')")
    assert values(warehouse) == ["other"]
    transaction.commit()
    assert values(warehouse) == ["a", "b", "other"]


def test_a_rolled_back_transaction_leaves_nothing_and_may_begin_again(warehouse):
    transaction = warehouse.transaction()
    with transaction.writing() as con:
        con.execute("INSERT INTO raw.t VALUES ('dropped')")
    transaction.rollback()
    transaction.rollback()
    assert values(warehouse) == []
    with transaction.writing() as con:
        con.execute("INSERT INTO raw.t VALUES ('kept')")
    transaction.commit()
    assert values(warehouse) == ["kept"]


def test_commit_before_any_write_does_nothing(warehouse):
    transaction = warehouse.transaction()
    transaction.commit()
    transaction.rollback()
    assert values(warehouse) == []


def test_a_transaction_writes_under_the_warehouse_lock(warehouse):
    transaction = warehouse.transaction()
    holding, release, wrote = threading.Event(), threading.Event(), threading.Event()

    def hold() -> None:
        with warehouse.writing():
            holding.set()
            release.wait(5)

    def write() -> None:
        with transaction.writing() as con:
            con.execute("INSERT INTO raw.t VALUES ('late')")
        wrote.set()

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(5)
    writer = threading.Thread(target=write)
    writer.start()
    assert not wrote.wait(0.2)  # waits for the lock
    release.set()
    assert wrote.wait(5)
    holder.join()
    writer.join()
    transaction.commit()
    assert values(warehouse) == ["late"]
