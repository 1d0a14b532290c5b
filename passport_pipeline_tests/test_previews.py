"""Previews: which attributes are personal, which are masked, and what a preview shows of a table."""

from __future__ import annotations

import duckdb
import pytest

from passport_pipeline.config import PrivacySettings
from passport_pipeline.config.apps import CsvBundleSource
from passport_pipeline.entities import ENTITIES, links
from passport_pipeline.previews import masked_attributes, preview
from passport_pipeline.warehouse.raw import LANDING_COLUMNS

DEFAULT = PrivacySettings()
PERSONAL = PrivacySettings(previews="personal_data")


def source(**rules) -> CsvBundleSource:
    return CsvBundleSource(name="csv", app="oneroster_csv", path="bundle.zip", **rules)


def test_every_personal_attribute_is_a_column_with_a_reason_and_no_id_is_personal():
    for entity in ENTITIES.values():
        assert set(entity.personal) <= set(entity.columns), entity.name
        assert all(entity.personal.values()), entity.name
        assert not set(entity.personal) & {"sis_id", *links(entity.name)}, entity.name
        assert bool(entity.personal) == (entity.person is not None or entity.name == "student_contacts")
    assert {"given_name", "email", "phone", "birth_date", "state_id", "identifier"} <= set(ENTITIES["students"].personal)
    assert {"sex", "white", "hispanic_or_latino_ethnicity", "city_of_birth"} <= set(ENTITIES["demographics"].personal)
    assert {"custodial", "pickup_allowed", "relationship"} <= set(ENTITIES["student_contacts"].personal)
    assert not ENTITIES["schools"].personal and not ENTITIES["courses"].personal


def test_a_mask_hides_the_attribute_for_the_same_person_and_what_mapping_feeds_it_from():
    configured = source(requirements={"demographics": {"birth_date": "mask"}, "students": {"email": "mask"}},
                        attributes={"students": {"email": {"lower": {"concat": ["username", "payload.mail"]}}}})
    assert masked_attributes(configured, "demographics") == {"birth_date"}
    assert masked_attributes(configured, "students") == {"birth_date", "email", "username", "payload.mail"}
    assert masked_attributes(configured, "staff") == set(), "a staff member is another person"
    assert masked_attributes(configured, "contacts") == set()


@pytest.fixture
def read(tmp_path):
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        columns = {**ENTITIES["students"].all_columns, **LANDING_COLUMNS}
        con.execute(f"CREATE TABLE students ({', '.join(f'{name} {kind}' for name, kind in columns.items())})")
        con.execute("""INSERT INTO students (sis_id, status, given_name, family_name, email, birth_date, grades,
                       school_sis_ids, payload, scope)
                       VALUES ('s1', 'active', 'Ana', 'Zapata', 'ana@x.org', '2012-03-04', ['05'], ['org-1'],
                               '{"givenName": "Ana", "secret": "Zapata"}', 'org-1')""")
        con.execute("CREATE TABLE schools_report (school VARCHAR, school_name VARCHAR, state VARCHAR)")
        con.execute("INSERT INTO schools_report VALUES ('org-1', 'Lincoln Elementary', 'mapped')")
        yield con


def test_by_default_a_preview_shows_ids_and_what_describes_no_one(read):
    text = preview(read, "students", "students", source(), DEFAULT)
    header = text.splitlines()[0]
    assert "sis_id" in header and "grades" in header and "school_sis_ids" in header and "'05'" in text
    for hidden in ("Ana", "Zapata", "ana@x.org", "2012-03-04", "given_name", "payload", "scope"):
        assert hidden not in text
    assert text.endswith("_Not shown: 11 personal attributes (privacy.previews is no_personal_data in passport.yaml)._")


def test_personal_previews_show_names_but_never_a_mask_nor_the_payload(read):
    masked = source(requirements={"students": {"family_name": "mask"}})
    text = preview(read, "students", "students", masked, PERSONAL)
    assert "Ana" in text and "ana@x.org" in text and "2012-03-04" in text
    assert "Zapata" not in text and "payload" not in text and "family_name |" not in text
    assert text.endswith("_Not shown: masked by the source's requirements, never shown: family_name._")


def test_a_report_names_the_attribute_each_column_holds(read):
    columns = {"school": "sis_id", "school_name": "name", "state": None}
    shown = preview(read, "schools_report", "schools", source(), DEFAULT, report_columns=columns, order_by="school")
    assert "Lincoln Elementary" in shown and "mapped" in shown
    masked = source(requirements={"schools": {"name": "mask"}})
    hidden = preview(read, "schools_report", "schools", masked, PERSONAL, report_columns=columns, order_by="school")
    assert "Lincoln" not in hidden and "org-1" in hidden and "never shown: school_name" in hidden


def test_an_empty_table_previews_as_no_rows(read):
    read.execute("DELETE FROM students")
    assert preview(read, "students", "students", source(), PERSONAL) == "(no rows)"
