"""What each client declares for Test Connection: probes derived from its own reads.

A probe list kept by hand drifts from what the sync reads; these tests hold every client's
probes to its reads, so an entity the sync lands is never missing from Test Connection (and
Test Connection never claims an entity the sync does not take from an endpoint).
"""

from __future__ import annotations

import pytest

from passport_pipeline.simulator.csv_bundle import export_bundle
from passport_pipeline.sources import OneRosterClient, SmsClient
from passport_pipeline.sources.csv_bundle import CsvBundle
from passport_pipeline.sources.reads import SourceClient
from passport_pipeline.sources.settings import ClientSettings, oneroster_scopes


def api_settings(**overrides) -> ClientSettings:
    return ClientSettings(**{"base_url": "https://sis.example", "token_url": "https://sis.example/token",
                             "client_id": "id", "client_secret": "secret", **overrides})


def landed(client: SourceClient) -> set[str]:
    return {entity for read in client.reads() if not read.absent for entity in read.lands}


def fed(client: SourceClient) -> set[str]:
    return {entity for probe in client.probes() if not probe.absent and probe.skip is None for entity in probe.feeds}


@pytest.mark.parametrize(("kind", "version"), [(OneRosterClient, "1.1"), (OneRosterClient, "1.2"), (SmsClient, "")])
def test_api_probes_feed_exactly_what_the_reads_land(kind, version):
    client = kind(api_settings(version=version))
    assert fed(client) == landed(client)
    for read in client.reads():
        probe = next(p for p in client.probes() if set(read.lands) <= set(p.feeds))
        assert probe.setting == f"endpoints.{probe.name}", "a probe of a configurable path names its setting"


@pytest.mark.parametrize(("version", "absent"), [("1.1", ()), ("1.2", ()), ("1.2", ("courses", "demographics"))])
def test_bundle_probes_feed_exactly_what_the_bundle_provides(small_district, tmp_path, version, absent):
    bundle = CsvBundle(export_bundle(small_district, tmp_path / "bundle", version=version, absent=absent))
    probes = {probe.name: probe for probe in bundle.probes()}

    assert fed(bundle) == landed(bundle) == set(bundle.entities())
    assert all(probes[f"{name}.csv"].absent and probes[f"{name}.csv"].feeds for name in absent)
    assert [name for name, probe in probes.items() if probe.schools] == ["orgs.csv"]
    assert all(probe.whole for probe in probes.values() if not (probe.absent or probe.skip))


def test_oneroster_probes_name_the_scope_each_read_needs_and_keep_a_school_for_the_nested_one():
    core, roster, demographics = oneroster_scopes("1.2")
    probes = {probe.name: probe for probe in OneRosterClient(api_settings(version="1.2")).probes()}

    assert probes["users"].feeds == ("staff", "contacts", "student_contacts")
    assert probes["orgs"].feeds == ("schools",) and probes["schools"].feeds == ()
    assert (probes["students"].scope, probes["demographics"].scope) == (core, demographics)
    assert probes["schools"].whole and probes["schools"].keeps == (("school", "sourcedId"),)
    nested = probes["schools/{id}/students"]
    assert (nested.scope, nested.needs, nested.shown) == (roster, ("school",), "schools/{school}/students")
    assert "courses, classes, students and enrollments whole and splits them by school instead" in nested.instead
    assert list(probes)[-1] == "schools/{id}/students", "the nested probe is reported last"


def test_an_sms_path_naming_a_school_and_a_student_is_asked_with_both(stub):
    stub.token_path = "/api/token"
    stub.routes["/api/v1/schools/5/students/3/enrollments"] = lambda request: (200, {}, [{"SchoolId": 5}] * 2)
    path = "v1/schools/{SchoolId}/students/{NameId}/enrollments"
    client = SmsClient(stub.settings(base_url=f"{stub.url}/api", token_url=None,
                                     endpoint_paths={"student_enrollments": path}))
    probes = {probe.name: probe for probe in client.probes()}
    probe = probes["student_enrollments"]

    assert (probe.needs, probe.shown) == (("student", "school"), "student_enrollments (student {student})")
    assert probes["students"].keeps == (("student", "NameId"),)
    assert probes["schools"].keeps == (("school", "SchoolId"),) and probes["schools"].schools == ("SchoolId",
                                                                                                  "SchoolCode")
    assert client.sample(probe, {"student": "3", "school": "5"}).rows == 2
    assert probes["names"].needs == ("student",) and probes["guardians"].needs == ()
