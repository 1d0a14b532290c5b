"""The sync rules in passport.yaml: each bad rule gets one line naming the rule and the key."""

from __future__ import annotations

import re

import pytest
import yaml

from passport_pipeline.config import ConfigError, load_config

CSV = {"name": "sis", "app": "oneroster_csv", "path": "."}


def load(tmp_path, **rules):
    file = tmp_path / "passport.yaml"
    file.write_text(yaml.safe_dump({"sources": [{**CSV, **rules}]}, sort_keys=False))
    return load_config(file, env={}).sources[0]


def problems(tmp_path, **rules) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, **rules)
    return [re.sub(r"^sources\[0\] \(sis\)\.| \(line \d+\)", "", line) for line in caught.value.problems]


def test_rules_load_into_models(tmp_path):
    source = load(
        tmp_path,
        attributes={"students": {"email": {"lower": {"trim": "email"}}, "state_id": "metadata.stateId",
                                 "grad_year": {"value": 2030}}},
        filters={"students": {"include_linked": False, "rules": [
            {"name": "high school", "when": [{"attribute": "grades", "operator": "in_list", "value": ["09", 10]}]}]}},
        requirements={"students": {"email": "report_if_missing", "birth_date": "mask"}},
        advanced={"schools_mapping": {"mode": "explicit", "schools": {"101": "Lincoln", "102": {"existing": "p-7"}}}},
    )
    email = source.attributes["students"]["email"]
    assert (email.operation, email.lower.operation, email.lower.trim.attribute) == ("lower", "trim", "email")
    assert source.attributes["students"]["state_id"].attribute == "metadata.stateId"
    assert source.attributes["students"]["grad_year"].value == "2030"
    rule = source.filters["students"].rules[0]
    assert (rule.name, rule.when[0].value, source.filters["students"].include_linked) == ("high school", ["09", "10"], False)
    assert source.requirements["students"] == {"email": "report_if_missing", "birth_date": "mask"}
    schools = source.advanced.schools_mapping.schools
    assert (schools["101"].name, schools["102"].existing) == ("Lincoln", "p-7")


def test_no_rules_means_defaults(tmp_path):
    source = load(tmp_path)
    assert (source.attributes, source.filters, source.requirements) == ({}, {}, {})


def test_bad_expressions_name_the_key(tmp_path):
    found = problems(tmp_path, attributes={"students": {
        "given_name": {"lowr": "given_name"},
        "state_id": {"trim": "x", "lower": "y"},
        "username": {"regex_replace": {"of": "username", "pattern": "[a-"}},
        "birth_date": {"date": {"of": "birth_date", "format": "ymd"}},
    }})
    assert found == [
        "attributes.students.given_name: unknown key 'lowr': did you mean 'lower'?",
        "attributes.students.state_id: give exactly one of attribute, value, trim, lower, upper, concat, "
        "coalesce, regex_replace, default, date, translate (given: trim, lower)",
        "attributes.students.username.regex_replace.pattern: '[a-' is not a valid regular expression "
        "(Invalid Input Error: missing ]: [a-)",
        "attributes.students.birth_date.date.format: 'ymd' has no % codes: write the layout, e.g. "
        "'%m/%d/%Y' for 09/30/2012",
    ]


def test_unknown_and_unmappable_attributes(tmp_path):
    found = problems(tmp_path, attributes={
        "students": {"sis_id": "identifier", "emial": "email", "family_name": {"concat": ["given_name", "famly_name"]},
                     "middle_name": {"trim": "grades"}, "identifier": "school_sis_ids", "phone": "payload.a..b"},
        "studnets": {}, "enrollments": {"user_sis_id": "payload.user.id"}})
    assert found[0] == "attributes.students.sis_id: 'sis_id' is how students records are identified and linked: it cannot be remapped"
    assert found[1].startswith("attributes.students.emial: unknown students attribute 'emial': must be one of status, ")
    assert found[1].endswith("(did you mean 'email'?)")
    assert found[2].startswith("attributes.students.family_name.concat[1]: unknown students attribute 'famly_name'")
    assert found[3:6] == [
        "attributes.students.middle_name.trim: 'grades' is a list: 'trim' works on one value",
        "attributes.students.identifier: 'school_sis_ids' is a list: 'identifier' takes one value",
        "attributes.students.phone: 'payload.a..b' is not a path: write payload.a.b",
    ]
    assert found[6].startswith("attributes.studnets: unknown entity 'studnets': must be one of schools,")
    assert found[7] == ("attributes.enrollments.user_sis_id: 'user_sis_id' is how enrollments records are "
                        "identified and linked: it cannot be remapped")


def test_bad_filter_rules_name_the_rule(tmp_path):
    when = [
        {"attribute": "grades", "operator": "in_list", "value": "09"},
        {"attribute": "birth_date", "operator": "before", "value": "2020-13-01"},
        {"attribute": "birth_date", "operator": "is_past", "value": "x"},
        {"attribute": "email", "operator": "equals"},
        {"attribute": "email", "operator": "contains", "value": ["a", "b"]},
        {"attribute": "grades", "operator": "equal", "value": "x"},
    ]
    found = problems(tmp_path, filters={"students": {"rules": [{"name": "hs", "when": when}]}})
    at = "filters.students.rules[0] (hs).when"
    assert found == [
        f"{at}[0].value: '09': 'in_list' needs a list, e.g. [\"09\", \"10\"]",
        f"{at}[1].value: '2020-13-01' is not a date: write it as YYYY-MM-DD",
        f"{at}[2].value: 'is_past' takes no value: remove it",
        f"{at}[3].value: missing: 'equals' needs a value, e.g. value: \"active\"",
        f"{at}[4].value: 'contains' compares with one value, not a list (use in_list for several)",
        f"{at}[5].operator: 'equal' is not allowed: must be one of equals, not_equals, contains, does_not_contain, "
        "is_empty, is_not_empty, before, after, is_past, is_future, in_list (did you mean 'equals'?)",
    ]
    found = problems(tmp_path, filters={"staff": {"rules": [{"when": [{"attribute": "rol", "operator": "is_empty"}]}]}})
    assert found[0].startswith("filters.staff.rules[0].when[0].attribute: unknown staff attribute 'rol'")
    assert problems(tmp_path, filters={"staff": {"rules": [{"name": "none", "when": []}]}}) == [
        "filters.staff.rules[0] (none).when: is empty: at least 1 needed"]


def test_bad_requirements_and_school_targets(tmp_path):
    found = problems(tmp_path, requirements={"students": {"email": "report_if_missng", "emial": "mask"}})
    assert found == ["requirements.students.email: 'report_if_missng' is not allowed: must be one of include, "
                     "report_if_missing, skip_if_missing, mask (did you mean 'report_if_missing'?)"]
    found = problems(tmp_path, requirements={"students": {"emial": "mask"}})
    assert found[0].startswith("requirements.students.emial: unknown students attribute 'emial'")
    assert problems(tmp_path, requirements={"staff": {"sis_id": "mask"}, "enrollments": {"user_sis_id": "mask"}}) == [
        "requirements.staff.sis_id: 'sis_id' is how staff records are identified and linked: it cannot be masked",
        "requirements.enrollments.user_sis_id: 'user_sis_id' is how enrollments records are identified and "
        "linked: it cannot be masked"]
    found = problems(tmp_path, advanced={"schools_mapping": {"mode": "explicit", "schools": {
        "1": "", "2": {"exist": "x"}, "3": {"name": "a", "existing": "b"}}}})
    assert found == [
        "advanced.schools_mapping.schools.1: give a new school's name, or {existing: <Passport school id>}",
        "advanced.schools_mapping.schools.2: unknown key 'exist': did you mean 'existing'?",
        "advanced.schools_mapping.schools.3: give a new school's name, or {existing: <Passport school id>}",
    ]


def test_a_csv_payload_path_to_a_carried_column_is_refused_naming_the_attribute_to_use(tmp_path):
    """A bundle's payload leaves out the columns canonical attributes carry: reading one there would
    always be empty, so the file is refused with the attribute that holds it."""
    found = problems(tmp_path, attributes={
        "students": {"given_name": "payload.givenName", "identifier": {"trim": "payload.userIds"},
                     "preferred_first_name": {"coalesce": ["metadata.skyward.nickname", "payload.EMAIL"]}},
        "classes": {"location": "payload.termSourcedIds.0"},
        "student_contacts": {"relationship": {"lower": "payload.relationship"}}})
    assert found == [
        "attributes.students.given_name: 'payload.givenName' is always empty here: a oneroster_csv payload "
        "leaves out the columns that canonical attributes carry; use given_name",
        "attributes.students.preferred_first_name.coalesce[1]: 'payload.EMAIL' is always empty here: a "
        "oneroster_csv payload leaves out the columns that canonical attributes carry; use email",
        "attributes.classes.location: 'payload.termSourcedIds.0' is always empty here: a oneroster_csv payload "
        "leaves out the columns that canonical attributes carry; use term_sis_ids",
        "attributes.student_contacts.relationship.lower: 'payload.relationship' is always empty here: a "
        "oneroster_csv payload leaves out the columns that canonical attributes carry; use relationship",
    ]
    api = {"name": "sky", "app": "skyward_oneroster", "base_url": "https://sis.example.org",
           "token_url": "https://sis.example.org/oauth/token",
           "credentials": {"client_id_env": "SIS_ID", "client_secret_env": "SIS_SECRET"},
           "attributes": {"students": {"given_name": "payload.givenName"}}}
    (tmp_path / "passport.yaml").write_text(yaml.safe_dump({"sources": [api]}))
    assert load_config(tmp_path / "passport.yaml", env={}).sources[0].attributes["students"]["given_name"]
