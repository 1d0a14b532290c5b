"""Source records to canonical records: exact columns, values as sent, roles, links, quarantine."""

from __future__ import annotations

import json

import pytest

from passport_pipeline.entities import ENTITIES
from passport_pipeline_tests.oracle.oneroster import normalize_oneroster
from passport_pipeline_tests.oracle.sms import normalize_sms


def guid(sourced_id: str, kind: str = "org") -> dict:
    return {"href": f"https://x/{kind}s/{sourced_id}", "sourcedId": sourced_id, "type": kind}


STUDENT_V1P1 = {
    "sourcedId": " stu-1 ", "status": "active", "dateLastModified": "2026-08-01T10:00:00.000Z",
    "metadata": {"skyward.nativeId": "501", "skyward.stateId": "ST-9", "skyward.gradYear": "2031"},
    "username": "jdoe", "userIds": [{"type": "stateId", "identifier": "ST-9"}], "enabledUser": "true",
    "givenName": "  Jane", "familyName": "Doe", "middleName": None, "role": "student", "identifier": "1001",
    "email": "jane@school.org", "sms": None, "phone": None, "agents": [guid("g-1", "user")],
    "orgs": [guid("sch-1"), guid("sch-2")], "grades": ["07"],
}

TEACHER_V1P2 = {
    "sourcedId": "t-1", "status": "active", "dateLastModified": "2026-08-01T10:00:00.000Z",
    "userMasterIdentifier": "ST-T1", "username": "tteach", "enabledUser": True, "givenName": "Tom",
    "familyName": "Teach", "preferredFirstName": "Tommy", "identifier": None,
    "roles": [{"roleType": "secondary", "role": "teacher", "org": guid("sch-1")},
              {"roleType": "primary", "role": "teacher", "org": guid("sch-2")}],
    "primaryOrg": guid("sch-2"),
}

GUARDIAN = {
    "sourcedId": "g-1", "status": "active", "dateLastModified": "2026-08-01T10:00:00.000Z",
    "givenName": "Gail", "familyName": "Doe", "role": "parent",
    "metadata": {"skyward.nativeId": "900", "skyward.relationships": [
        {"studentSourcedId": " stu-1 ", "relationship": "mother", "emergencyContact": "true",
         "custodial": "true", "pickupAllowed": "false", "contactOrder": "1"}]},
    "agents": [guid(" stu-1 ", "user")], "orgs": [guid("sch-1")],
}


def assert_exact_columns(batch) -> None:
    for entity, rows in batch.rows.items():
        expected = [*ENTITIES[entity].all_columns, "payload"]
        for row in rows:
            assert list(row) == expected, entity


def test_users_split_by_role_with_exact_columns_and_values_as_sent():
    batch = normalize_oneroster("users", [STUDENT_V1P1, TEACHER_V1P2, GUARDIAN])
    assert_exact_columns(batch)
    assert batch.counts() == {"students": 1, "staff": 1, "contacts": 1, "student_contacts": 1}
    student = batch.rows["students"][0]
    assert student["sis_id"] == " stu-1 " and student["given_name"] == "  Jane"
    assert student["school_sis_ids"] == ["sch-1", "sch-2"] and student["primary_school_sis_id"] is None
    assert student["state_id"] == "ST-9" and student["grad_year"] == "2031" and student["grades"] == ["07"]
    assert json.loads(student["payload"]) == STUDENT_V1P1


def test_v1p2_roles_give_the_primary_role_and_schools():
    staff = normalize_oneroster("users", [TEACHER_V1P2]).rows["staff"][0]
    assert staff["role"] == "teacher" and staff["school_sis_ids"] == ["sch-1", "sch-2"]
    assert staff["primary_school_sis_id"] == "sch-2" and staff["state_id"] == "ST-T1"
    assert staff["enabled_user"] == "true" and staff["preferred_first_name"] == "Tommy"


def test_contact_relationships_come_from_skyward_metadata():
    link = normalize_oneroster("users", [GUARDIAN]).rows["student_contacts"][0]
    assert link["sis_id"] == " stu-1 |g-1"
    assert (link["student_sis_id"], link["contact_sis_id"], link["relationship"]) == (" stu-1 ", "g-1", "mother")
    assert (link["emergency_contact"], link["custodial"], link["pickup_allowed"], link["contact_order"]) == (
        "true", "true", "false", "1")


def test_contacts_without_the_extension_fall_back_to_agents_as_guardians():
    plain = {**GUARDIAN, "metadata": None, "agents": [guid("s-7", "user"), guid("s-8", "user")]}
    links = normalize_oneroster("users", [plain]).rows["student_contacts"]
    assert [(x["student_sis_id"], x["relationship"], x["emergency_contact"]) for x in links] == [
        ("s-7", "guardian", None), ("s-8", "guardian", None)]


def test_other_entities_reduce_references_to_ids():
    klass = {"sourcedId": "c-1", "status": "active", "title": "Math", "course": guid("co-1", "course"),
             "school": guid("sch-1"), "terms": [guid("t-1", "academicSession"), guid("t-2", "academicSession")],
             "grades": ["09", "10"], "periods": ["1"]}
    enrollment = {"sourcedId": "e-1", "user": guid("stu-1", "user"), "class": guid("c-1", "class"),
                  "school": guid("sch-1"), "role": "student", "primary": False}
    demographics = {"sourcedId": "stu-1", "birthDate": "2012-03-04", "sex": "female", "asian": "false", "white": True}
    batch = normalize_oneroster("schools/sch-1/classes", [klass])
    assert_exact_columns(batch)
    row = batch.rows["classes"][0]
    assert (row["course_sis_id"], row["school_sis_id"], row["term_sis_ids"]) == ("co-1", "sch-1", ["t-1", "t-2"])
    enrollment_row = normalize_oneroster("enrollments", [enrollment]).rows["enrollments"][0]
    assert (enrollment_row["user_sis_id"], enrollment_row["primary"]) == ("stu-1", "false")
    demo = normalize_oneroster("demographics", [demographics]).rows["demographics"][0]
    assert (demo["asian"], demo["white"], demo["sex"]) == ("false", "true", "female")


def test_broken_records_are_quarantined_and_the_page_goes_on():
    records = ["not an object", {"status": "active", "role": "student"}, {"sourcedId": "  ", "role": "student"},
               {"sourcedId": "x-1"}, {"sourcedId": "x-2", "roles": ["teacher"]}, STUDENT_V1P1]
    batch = normalize_oneroster("users", records)
    assert batch.counts() == {"students": 1}
    assert [q.reason for q in batch.quarantined] == [
        "not a JSON object", "no sourcedId", "no sourcedId", "no role", "roles[] has no role objects"]
    assert batch.quarantined[0].raw == '"not an object"'
    assert all(q.endpoint == "users" for q in batch.quarantined)


def test_unknown_collections_are_refused():
    with pytest.raises(ValueError, match="not a OneRoster collection"):
        normalize_oneroster("lineItems", [])
    with pytest.raises(ValueError, match="not an SMS endpoint"):
        normalize_sms("grades", [])


SMS_STUDENT = {"NameId": 501, "DisplayId": "1001", "StateId": "ST-9", "FirstName": "Jane", "MiddleName": None,
               "LastName": "Doe ", "GradYr": 2031, "Gender": "F", "DateOfBirth": "2012-03-04T00:00:00",
               "SchoolEmail": "jane@school.org", "Email": None, "PhoneNumber": None, "DefaultSchoolId": 2,
               "schoolIds": [2, 3], "Status": "Active", "LastModified": "2026-08-01T10:00:00",
               "Enrollments": [{"SchoolId": 2, "GradeLevel": "07", "Status": "Active"},
                               {"SchoolId": 3, "GradeLevel": "07", "Status": "Active"}]}


def test_sms_students_with_grades_and_demographics():
    batch = normalize_sms("students", [SMS_STUDENT])
    assert_exact_columns(batch)
    student = batch.rows["students"][0]
    assert (student["sis_id"], student["status"], student["family_name"]) == ("501", "active", "Doe ")
    assert student["school_sis_ids"] == ["2", "3"] and student["primary_school_sis_id"] == "2"
    assert student["grades"] == ["07"] and student["grad_year"] == "2031"
    assert batch.rows["demographics"][0]["sex"] == "F"


def test_sms_guardians_become_contacts_with_links_and_a_role():
    guardian = {"GuardianNameId": 900, "FirstName": "Gail", "LastName": "Doe", "Email": "g@x.org",
                "PhoneNumber": "555-0100", "PhoneNumberType": "Home", "PhoneNumber2": "555-0199",
                "PhoneNumberType2": "Cell", "Status": "ToBeDeleted", "LastModified": "2026-08-01T10:00:00",
                "Students": [{"StudentNameId": 501, "RelationshipDesc": "mother", "IsGuardian": True,
                              "IsEmergencyContact": True, "IsCustodial": True, "AllowPickup": False,
                              "ContactOrder": 1}]}
    neighbor = {**guardian, "GuardianNameId": 901,
                "Students": [{**guardian["Students"][0], "RelationshipDesc": "neighbor", "IsGuardian": False}]}
    batch = normalize_sms("guardians", [guardian, neighbor])
    assert_exact_columns(batch)
    contact = batch.rows["contacts"][0]
    assert (contact["role"], contact["status"], contact["phone"], contact["sms"]) == (
        "parent", "tobedeleted", "555-0100", "555-0199")
    assert batch.rows["contacts"][1]["role"] == "relative"
    link = batch.rows["student_contacts"][0]
    assert (link["sis_id"], link["emergency_contact"], link["pickup_allowed"], link["contact_order"]) == (
        "501|900", "true", "false", "1")


def test_sms_merged_staff_sections_and_schedules():
    member = {"NameId": 7, "PositionDesc": "Teacher", "IsTeacher": True, "SchoolId": 3, "IsPrimarySchool": True,
              "Status": "Active", "Assignments": [{"NameId": 7, "SchoolId": 2, "IsPrimarySchool": False},
                                                  {"NameId": 7, "SchoolId": 3, "IsPrimarySchool": True}]}
    section = {"SectionId": 44, "SectionName": "Math", "CourseId": 8, "SchoolId": 2, "TermIds": [5, 6],
               "Teachers": [{"StaffNameId": 7, "IsPrimary": True}], "Status": "Active"}
    schedule = {"StudentNameId": 501, "SectionId": 44, "SchoolId": 2, "EntryDate": "2026-08-15T00:00:00",
                "ExitDate": None, "Status": "Active"}
    staff = normalize_sms("staff", [member])
    classes = normalize_sms("sections", [section])
    schedules = normalize_sms("student_schedules", [schedule, {"SectionId": 1}])
    for batch in (staff, classes, schedules):
        assert_exact_columns(batch)
    assert staff.rows["staff"][0]["role"] == "teacher"
    assert staff.rows["staff"][0]["school_sis_ids"] == ["2", "3"]
    assert staff.rows["staff"][0]["primary_school_sis_id"] == "3"
    assert classes.rows["classes"][0]["term_sis_ids"] == ["5", "6"]
    teacher = classes.rows["enrollments"][0]
    assert (teacher["sis_id"], teacher["role"], teacher["primary"]) == ("7|44", "teacher", "true")
    assert schedules.rows["enrollments"][0]["sis_id"] == "501|44"
    assert [q.reason for q in schedules.quarantined] == ["no StudentNameId"]
