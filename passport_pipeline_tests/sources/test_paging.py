"""Dropping the rows offset paging repeats at page seams, whatever the records' keys look like."""

from datetime import UTC, datetime

from passport_pipeline.sources.paging import RecentKeys, server_time


def sourced_id(record):
    return record.get("sourcedId") if isinstance(record, dict) else None


def ids(records):
    return [sourced_id(record) for record in records]


def test_a_page_of_new_keys_passes_whole():
    recent = RecentKeys()
    page = [{"sourcedId": "1"}, {"sourcedId": "2"}]
    kept, dropped = recent.fresh(page, sourced_id)
    assert (kept, dropped) == (page, 0)


def test_keys_repeated_in_the_page_or_the_last_pages_are_dropped():
    recent = RecentKeys(pages=2)
    recent.fresh([{"sourcedId": "1"}, {"sourcedId": "2"}], sourced_id)
    recent.fresh([{"sourcedId": "3"}], sourced_id)
    kept, dropped = recent.fresh([{"sourcedId": "2"}, {"sourcedId": "4"}, {"sourcedId": "4", "n": 2}], sourced_id)
    assert (ids(kept), dropped) == (["4"], 2)
    kept, dropped = recent.fresh([{"sourcedId": "1"}, {"sourcedId": "3"}], sourced_id)  # "1" is 3 pages back
    assert (ids(kept), dropped) == (["1"], 1)


def test_records_without_a_usable_key_always_pass():
    recent = RecentKeys()
    page = ["broken", {"name": "no id"}, {"sourcedId": ["a", "list"]}, {"sourcedId": {"an": "object"}},
            {"sourcedId": "1"}]
    kept, dropped = recent.fresh(page, sourced_id)
    assert (kept, dropped) == (page, 0)
    kept, dropped = recent.fresh(page, sourced_id)
    assert (kept, dropped) == (page[:4], 1)


def test_the_servers_date_header_is_read_as_utc():
    assert server_time({"Date": "Tue, 01 Sep 2026 08:00:00 GMT"}) == datetime(2026, 9, 1, 8, tzinfo=UTC)
    assert server_time({"Date": "Tue, 01 Sep 2026 10:30:00 +0200"}) == datetime(2026, 9, 1, 8, 30, tzinfo=UTC)
    assert server_time({"Date": "Tue, 01 Sep 2026 08:00:00 -0000"}) == datetime(2026, 9, 1, 8, tzinfo=UTC)
    for headers in ({}, {"Date": ""}, {"Date": "yesterday"}, {"Date": "Tue, 99 Sep 2026 08:00:00 GMT"}):
        assert server_time(headers) is None
