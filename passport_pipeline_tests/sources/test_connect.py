"""From passport.yaml sources to clients: every setting reaches the client it is meant for."""

from passport_pipeline.config import CsvBundleSource, OneRosterSource, SmsSource
from passport_pipeline.sources import OneRosterClient, SmsClient
from passport_pipeline.sources.connect import client_settings, open_client

ENV = {"ID": "district-key", "SECRET": "s3cr3t"}
CREDENTIALS = {"client_id_env": "ID", "client_secret_env": "SECRET"}


def test_oneroster_settings_and_path_overrides_reach_the_client():
    source = OneRosterSource(
        name="q", base_url="https://d.skyward.com/API", token_url="https://d.skyward.com/API/oauth/token",
        oneroster_version="1.2", base_path="/ims/oneroster/v1p2", credentials=CREDENTIALS,
        http={"page_size": 250, "max_concurrency": 2}, endpoints={"students": "custom/students"},
    )
    settings = client_settings(source, ENV)
    assert (settings.client_id, settings.client_secret, settings.secret_env) == ("district-key", "s3cr3t", "SECRET")
    assert settings.oneroster_root == "https://d.skyward.com/API/ims/oneroster/v1p2"
    assert (settings.page_size, settings.max_concurrency, settings.version) == (250, 2, "1.2")
    with open_client(source, ENV) as client:
        assert isinstance(client, OneRosterClient)
        assert client.collection("students").stats.endpoint == "custom/students"
        assert client.collection("schools/x/students").stats.endpoint == "schools/x/students"


def test_sms_paths_from_the_config_fill_their_placeholders():
    source = SmsSource(name="sms", base_url="https://sms.d.org/api", token_url="https://sms.d.org/api/token",
                       credentials=CREDENTIALS, endpoints={"staff": "v2/StaffMembers"})
    with open_client(source, ENV) as client:
        assert isinstance(client, SmsClient)
        assert client.url("student_enrollments", 5) == "https://sms.d.org/api/v1/students/5/enrollments"
        assert client.url("names", 7) == "https://sms.d.org/api/v1/names/7"
        assert client.url("staff") == "https://sms.d.org/api/v2/StaffMembers"


def test_csv_bundle_source_opens_the_bundle(tmp_path, small_district):
    from passport_pipeline.simulator.csv_bundle import export_bundle

    bundle = export_bundle(small_district, tmp_path / "bundle")
    client = open_client(CsvBundleSource(name="csv", path=bundle))
    assert "students" in client.entities()
