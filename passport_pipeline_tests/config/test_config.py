"""passport.yaml: the shipped file, where files and the warehouse are found, and every message.

Most cases write a small config to ``tmp_path`` and compare ConfigError's lines exactly, with
the ``(line N)`` markers stripped; the tests of line numbers keep them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from passport_pipeline.config import (
    ConfigError,
    PassportConfig,
    default_scopes,
    load_config,
)
from passport_pipeline.config import load as load_module
from passport_pipeline.entities import ENTITIES

SHIPPED = Path(load_module.__file__).resolve().parents[2] / "passport.yaml"

SOURCE = {
    "name": "sis",
    "app": "skyward_oneroster",
    "base_url": "https://sis.example.org/API",
    "token_url": "https://sis.example.org/API/oauth/token",
    "credentials": {"client_id_env": "SIS_CLIENT_ID", "client_secret_env": "SIS_CLIENT_SECRET"},
}
SMS = {**SOURCE, "app": "skyward_sms", "base_url": "https://sis.example.org/api", "token_url": "https://sis.example.org/api/token"}


def source(**changes) -> dict:
    return {**SOURCE, **changes}


def write(folder: Path, config: dict | str, name: str = "passport.yaml") -> Path:
    file = folder / name
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False))
    return file


def problems(folder: Path, config: dict | str, keep_lines: bool = False) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(write(folder, config), env={})
    lines = caught.value.problems
    return lines if keep_lines else [re.sub(r" \(line \d+\)", "", line) for line in lines]


def test_shipped_file_works_with_no_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = load_config(env={})
    assert config.warehouse == SHIPPED.parent / "data" / "warehouse.duckdb"
    assert (config.simulator.seed, config.simulator.students, config.simulator.dirty) == (7, 5000, "demo")
    skyward, other = config.sources
    assert (other.name, other.app, other.sis_id_prefix, other.embedded) == ("other_sis", "oneroster_csv", "OTH-", True)
    assert config.bundled_at(tmp_path / "bundle").sources[1].path == tmp_path / "bundle"
    with pytest.raises(ConfigError, match="other-system bundle, which is not written yet"):
        other.bundle_path
    assert (skyward.name, skyward.app, skyward.sis_id_prefix, skyward.sync_mode) == ("skyward", "skyward_oneroster", "", "import")
    assert skyward.embedded and skyward.oneroster_version == "1.1"
    assert skyward.base_path == "/ims/oneroster/v1p1" and skyward.scopes == default_scopes("1.1")
    assert skyward.entities == tuple(ENTITIES) and skyward.delta.enabled
    assert config.privacy.previews == "no_personal_data"
    client_id, secret = skyward.resolve_credentials({})
    assert (client_id, secret.get_secret_value()) == ("passport-demo", "passport-demo-secret")
    served = config.served_by("http://127.0.0.1:8123/").sources[0]
    assert served.api_url == "http://127.0.0.1:8123/ims/oneroster/v1p1"
    assert served.token_endpoint == "http://127.0.0.1:8123/oauth/token"


def test_shipped_examples_are_valid_once_uncommented(tmp_path):
    text = re.sub(r"(?m)^  # (- |  )", r"  \1", SHIPPED.read_text())
    config = load_config(write(tmp_path, text), env={})
    qmlativ, sms, bundle = (config.source(n) for n in ("qmlativ", "sms", "csv_bundle"))
    assert qmlativ.api_url == "https://yourdistrict.skyward.com/YourDistrictAPI/ims/oneroster/v1p2"
    assert qmlativ.scopes == default_scopes("1.2")
    assert sms.api_url == "https://sms.yourdistrict.org/api" and sms.endpoints["students"] == "v1/students"
    assert bundle.path == tmp_path / "data" / "bundles" / "oneroster.zip"


def test_config_file_comes_from_env_then_current_folder(tmp_path, monkeypatch):
    by_env = write(tmp_path / "env", {"timezone": "UTC", "sources": [SOURCE]})
    assert load_config(env={"PASSPORT_CONFIG": str(by_env)}).timezone == "UTC"
    write(tmp_path / "cwd", {"timezone": "America/Denver", "sources": [SOURCE]})
    monkeypatch.chdir(tmp_path / "cwd")
    assert load_config(env={}).timezone == "America/Denver"
    with pytest.raises(ConfigError, match=r"PASSPORT_CONFIG points to .*nowhere\.yaml"):
        load_config(env={"PASSPORT_CONFIG": str(tmp_path / "nowhere.yaml")})
    with pytest.raises(ConfigError, match=r"no configuration file at .*missing\.yaml"):
        load_config(tmp_path / "missing.yaml", env={})
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(load_module, "REPO_ROOT", tmp_path / "env" / "nothing")
    with pytest.raises(ConfigError, match="no passport.yaml found in .* or set PASSPORT_CONFIG"):
        load_config(env={})


def test_warehouse_is_relative_to_the_file_and_overridden_by_env(tmp_path, monkeypatch):
    file = write(tmp_path / "district", {"warehouse": "db/w.duckdb", "sources": [SOURCE]})
    monkeypatch.chdir(tmp_path)
    assert load_config(file, env={}).warehouse == tmp_path / "district" / "db" / "w.duckdb"
    assert load_config(file, env={"PASSPORT_WAREHOUSE": "elsewhere.duckdb"}).warehouse == tmp_path / "elsewhere.duckdb"


ONE_OF_ENTITIES = "must be one of " + ", ".join(ENTITIES)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"sources": [source(http={"pagesize": 500})]}, "sources[0] (sis).http: unknown key 'pagesize': did you mean 'page_size'?"),
        ({"sources": [source(page_size=500)]}, "sources[0] (sis): unknown key 'page_size': it belongs under 'http' (http.page_size)"),
        ({"sources": [SOURCE], "warehous": "w.duckdb"}, "top level: unknown key 'warehous': did you mean 'warehouse'?"),
        ({"sources": [source(sync_mode="import_only")]}, "sources[0] (sis).sync_mode: 'import_only' is not allowed: must be one of import, two_way (did you mean 'import'?)"),
        ({"sources": [source(app="skyward_smx")]}, "sources[0] (sis).app: 'skyward_smx' is not allowed: must be one of skyward_oneroster, skyward_sms, oneroster_csv (did you mean 'skyward_sms'?)"),
        ({"sources": [{"name": "sis"}]}, "sources[0] (sis).app: missing: must be one of skyward_oneroster, skyward_sms, oneroster_csv"),
        ({"sources": [source(http={"page_size": 0})]}, "sources[0] (sis).http.page_size: 0 is out of range: must be from 1 to 10000"),
        ({"sources": [source(http={"read_timeout_s": "slow"})]}, "sources[0] (sis).http.read_timeout_s: 'slow' is not a number"),
        ({"sources": [source(http={"backoff_base_s": 5, "backoff_max_s": 1})]}, "sources[0] (sis).http.backoff_max_s: 1.0 is less than backoff_base_s (5.0)"),
        ({"sources": [source(base_url="ftp://sis.example.org")]}, "sources[0] (sis).base_url: 'ftp://sis.example.org' is not an http(s) URL (e.g. https://district.skyward.com/DistrictAPI) or 'embedded' for the demo simulator"),
        ({"sources": [source(base_url="https://admin:pw@sis.example.org")]}, "sources[0] (sis).base_url: 'https://***@sis.example.org' holds a user name or password: credentials come from environment variables"),
        ({"sources": [source(token_url=None)]}, "sources[0] (sis).token_url: missing: app skyward_oneroster needs its token URL (e.g. https://district.skyward.com/DistrictAPI/oauth/token); it is never guessed from base_url"),
        ({"sources": [{**SMS, "token_url": None}]}, "sources[0] (sis).token_url: missing: app skyward_sms needs its token URL (e.g. https://sms.district.org/api/token); it is never guessed from base_url"),
        ({"sources": [source(credentials=None)]}, "sources[0] (sis).credentials: missing: give client_id_env and client_secret_env, the names of the environment variables holding the client id and secret"),
        ({"simulator": {}, "sources": [source(base_url="embedded")]}, "sources[0] (sis).token_url: must not be set when base_url is 'embedded': the simulator's token URL is known"),
        ({"sources": [source(base_url="embedded", token_url=None)]}, "sources[0] (sis).base_url: 'embedded' needs a simulator: section at the top of the file (or give the server's URL)"),
        ({"sources": [{"name": "other", "app": "oneroster_csv", "path": "embedded"}]}, "sources[0] (other).path: 'embedded' needs a simulator: section at the top of the file (or give the bundle's folder or .zip)"),
        ({"sources": [SOURCE, SMS]}, "sources[1] (sis).name: 'sis' is already the name of sources[0]: each source needs its own name"),
        ({"sources": []}, "sources: is empty: at least 1 needed"),
        ({"timezone": "America/Chicagoo", "sources": [SOURCE]}, "timezone: 'America/Chicagoo' is not a timezone: give an IANA name such as America/Chicago (did you mean 'America/Chicago'?)"),
        ({"privacy": {"previews": "names"}, "sources": [SOURCE]}, "privacy.previews: 'names' is not allowed: must be one of no_personal_data, personal_data"),
        ({"privacy": {"previews": "personal"}, "sources": [SOURCE]}, "privacy.previews: 'personal' is not allowed: must be one of no_personal_data, personal_data (did you mean 'personal_data'?)"),
        ({"privacy": "personal_data", "sources": [SOURCE]}, "privacy: 'personal_data' is not a section of settings (key: value lines)"),
        ({"privacy": {"preview": "personal_data"}, "sources": [SOURCE]}, "privacy: unknown key 'preview': did you mean 'previews'?"),
        ({"sources": [source(name="Main SIS")]}, "sources[0] (Main SIS).name: 'Main SIS' is not a valid name: use lowercase letters, digits and _, starting with a letter (e.g. skyward_main)"),
        ({"sources": [source(sis_id_prefix="hs ")]}, "sources[0] (sis).sis_id_prefix: 'hs ' contains whitespace: a prefix is glued to ids, e.g. 'hs_' or 'district2-'"),
        ({"sources": [source(entities=["students", "studnets"])]}, f"sources[0] (sis).entities[1]: unknown entity 'studnets': {ONE_OF_ENTITIES} (did you mean 'students'?)"),
        ({"sources": [source(entities=[])]}, "sources[0] (sis).entities: is empty: list at least one entity, or leave the key out to extract all"),
        ({"sources": [source(oneroster_version=1.3)]}, "sources[0] (sis).oneroster_version: '1.3' is not allowed: must be one of 1.1, 1.2 (did you mean '1.2'?)"),
        ({"sources": [source(base_path="ims/oneroster/v1p2")]}, "sources[0] (sis).base_path: 'ims/oneroster/v1p2' is not a path under base_url: it starts with / (e.g. /ims/oneroster/v1p2)"),
        ({"sources": [{**SMS, "endpoints": {"staf": "v2/staff"}}]}, "sources[0] (sis).endpoints.staf: unknown endpoint 'staf': must be one of schools, students, student_enrollments, guardians, staff, courses, sections, terms, student_schedules, names (did you mean 'staff'?)"),
        ({"sources": [{**SMS, "endpoints": {"names": "v1/names/{NameID}"}}]}, "sources[0] (sis).endpoints.names: 'v1/names/{NameID}' uses unknown placeholder(s) NameID: allowed are {NameId}, {SchoolId}"),
        ({"sources": [{**SMS, "endpoints": {"names": "v1/names"}}]}, "sources[0] (sis).endpoints.names: 'v1/names' must keep {NameId} (e.g. v1/names/{NameId})"),
        ({"sources": [{**SMS, "delta": {"enabled": True}}]}, "sources[0] (sis).delta.enabled: app skyward_sms cannot read only what changed: set enabled: false"),
        ({"sources": [{"name": "csv", "app": "oneroster_csv", "path": "b.zip", "sync_mode": "two_way"}]}, "sources[0] (csv).sync_mode: 'two_way' is not possible with app oneroster_csv: it cannot take changes back"),
        ({"sources": [source(advanced={"hold_thresholds": {"studnets": {}}})]}, f"sources[0] (sis).advanced.hold_thresholds.studnets: unknown entity 'studnets': {ONE_OF_ENTITIES} (did you mean 'students'?)"),
        ({"sources": [source(advanced={"hold_thresholds": {"students": {"deletes": 2}}})]}, "sources[0] (sis).advanced.hold_thresholds.students.deletes: 2 is out of range: must be from 0 to 1"),
        ({"sources": [source(advanced={"schools_mapping": {"mode": "explicit"}})]}, "sources[0] (sis).advanced.schools_mapping.schools: missing: mode explicit needs at least one 'source school id: Passport school' line"),
        ({"sources": [source(credentials={"client_id_env": "SIS_ID", "client_secret_env": "pa55 word!"})]}, "sources[0] (sis).credentials.client_secret_env: must be the NAME of an environment variable (letters, digits and _, e.g. SKYWARD_CLIENT_SECRET), not the value itself"),
        ({"sources": ["sis"]}, "sources[0]: 'sis' is not a section of settings (key: value lines)"),
    ],
)
def test_each_problem_is_one_clear_line(tmp_path, config, expected):
    assert problems(tmp_path, config) == [expected]


def test_several_problems_give_several_lines_in_file_order(tmp_path):
    text = """\
timezone: Mars/Olympus
sources:
  - name: sis
    app: skyward_oneroster
    base_url: https://sis.example.org/API
    token_url: https://sis.example.org/API/oauth/token
    credentials: {client_id_env: SIS_ID, client_secret_env: SIS_SECRET}
    http:
      page_size: 20000
      max_concurency: 8
  - name: sis
    app: skyward_sms
    base_url: embedded
"""
    assert problems(tmp_path, text, keep_lines=True) == [
        "timezone (line 1): 'Mars/Olympus' is not a timezone: give an IANA name such as America/Chicago",
        "sources[0] (sis).http.page_size (line 9): 20000 is out of range: must be from 1 to 10000",
        "sources[0] (sis).http (line 10): unknown key 'max_concurency': did you mean 'max_concurrency'?",
        "sources[1] (sis).name (line 11): 'sis' is already the name of sources[0]: each source needs its own name",
        "sources[1] (sis).base_url (line 13): 'embedded' needs a simulator: section at the top of the file (or give the server's URL)",
    ]


def test_yaml_syntax_errors_and_repeated_keys_name_their_lines(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "sources:\n  - name: sis\n    app: [skyward_sms\n"), env={})
    assert "is not valid YAML" in str(caught.value) and caught.value.problems[0].startswith("line 4, column 1: expected ',' or ']'")
    repeated = "sources:\n  - name: sis\n    app: oneroster_csv\n    path: a.zip\n    path: b.zip\n"
    assert problems(tmp_path, repeated, keep_lines=True) == [
        "sources[0] (sis) (line 5): key 'path' is given twice (lines 4 and 5): keep one"
    ]
    with pytest.raises(ConfigError, match="holds no settings"):
        load_config(write(tmp_path, "# nothing yet\n"), env={})


def test_credentials_come_from_the_named_variables_and_never_show(tmp_path):
    config = load_config(write(tmp_path, {"simulator": {}, "sources": [SOURCE, {**SMS, "name": "demo", "base_url": "embedded", "token_url": None}]}), env={})
    sis, demo = config.sources
    env = {"SIS_CLIENT_ID": "district-key", "SIS_CLIENT_SECRET": "s3cr3t-value"}
    credentials = sis.resolve_credentials(env)
    assert (credentials.client_id, credentials.secret.get_secret_value()) == ("district-key", "s3cr3t-value")
    assert "s3cr3t-value" not in repr(credentials) + str(credentials) + repr(config) + str(config)
    with pytest.raises(ConfigError) as caught:
        sis.resolve_credentials({"SIS_CLIENT_ID": "district-key"})
    assert caught.value.problems == [
        "environment variable SIS_CLIENT_SECRET is not set: it must hold the client secret (credentials.client_secret_env)"
    ]
    assert "district-key" not in str(caught.value)
    assert demo.resolve_credentials({}).client_id == "passport-demo"
    assert demo.resolve_credentials(env).secret.get_secret_value() == "s3cr3t-value"
    with pytest.raises(ConfigError, match="SIS_CLIENT_ID is not set"):
        demo.resolve_credentials({"SIS_CLIENT_SECRET": "s3cr3t-value"})


def test_a_secret_pasted_into_the_file_is_never_echoed(tmp_path):
    pasted = source(credentials={"client_id_env": "SIS_ID", "client_secret_env": "Xy9!pasted-secret"}, client_secret="Xy9!other-secret")
    assert not any("pasted-secret" in line or "other-secret" in line for line in problems(tmp_path, {"sources": [pasted]}))


def test_embedded_sources_need_the_running_simulator(tmp_path):
    config = load_config(write(tmp_path, {"simulator": {}, "sources": [{**SMS, "name": "demo", "base_url": "embedded", "token_url": None}, SOURCE]}), env={})
    with pytest.raises(ConfigError, match="embedded simulator, which is not running"):
        config.sources[0].api_url
    sms, sis = config.served_by("http://127.0.0.1:9000").sources
    assert (sms.api_url, sms.token_endpoint) == ("http://127.0.0.1:9000/api", "http://127.0.0.1:9000/api/token")
    assert sis is config.sources[1] and sis.api_url == "https://sis.example.org/API/ims/oneroster/v1p1"


def test_defaults_follow_the_version_and_app(tmp_path):
    config = load_config(write(tmp_path, {"sources": [
        source(name="v12", oneroster_version=1.2),
        source(name="skyward12", oneroster_version="1.2", base_path="/ims/oneroster/v1p2/", scopes=["custom"]),
        {**SMS, "name": "sms", "endpoints": {"staff": "/v2/staffAssignments", "guardians": "v1/guardians?studentNameId={NameId}"}},
        {"name": "csv", "app": "oneroster_csv", "path": "bundle"},
    ]}), env={})
    v12, skyward12, sms, csv = config.sources
    assert (v12.base_path, v12.scopes) == ("/ims/oneroster/rostering/v1p2", default_scopes("1.2"))
    assert (skyward12.base_path, skyward12.scopes) == ("/ims/oneroster/v1p2", ("custom",))
    assert sms.endpoints["staff"] == "v2/staffAssignments" and sms.endpoints["student_enrollments"] == "v1/students/{NameId}/enrollments"
    assert not sms.delta.enabled and not csv.delta.enabled and csv.path == tmp_path / "bundle"
    assert PassportConfig.model_validate(config.model_dump()) == config
    with pytest.raises(ConfigError, match="no source named 'smss': must be one of v12, skyward12, sms, csv \\(did you mean 'sms'\\?\\)"):
        config.source("smss")
