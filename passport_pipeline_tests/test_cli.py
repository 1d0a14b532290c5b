"""The `passport-pipeline` command's argument handling."""

import re

import pytest

from passport_pipeline import cli


def test_fault_options_parse_json_values_and_keep_plain_strings():
    assert cli._parse_faults(["clamp_limit=500", "rate_limit_share=0.1", "empty_endpoints=[\"students\"]",
                              "plain_errors=true"]) == {
        "clamp_limit": 500,
        "rate_limit_share": 0.1,
        "empty_endpoints": ["students"],
        "plain_errors": True,
    }


def test_fault_option_without_value_is_a_clear_error():
    with pytest.raises(SystemExit, match="NAME=VALUE"):
        cli._parse_faults(["clamp_limit"])


def test_unknown_fault_name_is_rejected_before_serving(capsys, tmp_path):
    code = cli.main(["simulate", "--store", str(tmp_path / "x.duckdb"), "--fault", "no_such_fault=1"])
    assert code == 2
    assert "no_such_fault" in capsys.readouterr().err


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 2
    assert "simulate" in capsys.readouterr().out


EMBEDDED = """
warehouse: {warehouse}
simulator: {{seed: 7, students: 300, dirty: demo}}
sources:
  - name: skyward
    app: skyward_oneroster
    base_url: embedded
  - name: other_sis
    app: oneroster_csv
    path: embedded
    sis_id_prefix: "OTH-"
    entities: [schools, students, contacts, student_contacts, demographics]
"""


@pytest.fixture
def embedded_config(tmp_path, monkeypatch):
    """passport.yaml syncing a small embedded district and its other system, generated under tmp_path."""
    path = tmp_path / "passport.yaml"
    path.write_text(EMBEDDED.format(warehouse=tmp_path / "warehouse.duckdb"))
    monkeypatch.setenv("PASSPORT_CONFIG", str(path))
    monkeypatch.setenv("PASSPORT_SIMULATOR_DIR", str(tmp_path / "simulator"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    return path


def test_demo_and_sync_start_the_embedded_district_land_both_sources_and_report(embedded_config, capsys):
    assert cli.main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "from 2 sources (skyward, other_sis)" in out
    assert "succeeded" in out and "enrollments" in out and "Issues:" in out
    assert re.search(r"other_sis +students +full +[1-9]", out)
    other = out.split("Rules: source 'other_sis'")[1]
    kept = dict(re.findall(r"\n(students|contacts) +([\d,]+) +\2 +\2 +\2 ", other))
    assert set(kept) == {"students", "contacts"}, "its people are all staged: no schedules (not extracted) loses no one"
    assert cli.main(["sync", "--mode", "delta"]) == 0
    assert "delta" in capsys.readouterr().out


def test_test_connection_reports_usable_sources_and_exit_codes(embedded_config, capsys, monkeypatch):
    assert cli.main(["test-connection"]) == 0
    assert "2 of 2 sources usable" in capsys.readouterr().out
    assert cli.main(["test-connection", "--source", "nope"]) == 2
    assert "no source named" in capsys.readouterr().err


def test_invalid_config_is_one_clear_message_and_exit_code_2(tmp_path, monkeypatch, capsys):
    bad = tmp_path / "passport.yaml"
    bad.write_text("sources:\n  - name: Sky Ward\n    app: skyward_oneroster\n    base_url: embedded\n")
    monkeypatch.setenv("PASSPORT_CONFIG", str(bad))
    assert cli.main(["test-connection"]) == 2
    assert "sources[0]" in capsys.readouterr().err
