"""The ``oneroster_csv`` source: a OneRoster 1.1 CSV bundle (folder or .zip) as canonical records.

A bundle is a complete snapshot of the files its manifest lists, so an entity read to the end of
its file is complete, for every school at once. Files are streamed with the stdlib ``csv``
module, one record at a time, so memory is bounded by the page size and physical line numbers
are known for every issue.

Reading rules:

- ``manifest.csv`` must exist and say ``oneroster.version`` 1.1; a file it lists as ``bulk`` or
  ``delta`` must exist. Reading a file the manifest lists as ``absent`` (or not at all) is an
  error, never an empty snapshot, so nothing is ever deleted for want of a file.
- Headers are matched by name, in any order; a file lacking a column the reader maps fails with
  an error naming the file and the columns. Unknown columns (``metadata.*`` extensions) are
  kept in the payload.
- A broken row — wrong number of fields, no ``sourcedId``, bytes that are not UTF-8, unparsable
  quoting — becomes an :class:`Issue` naming file, line and reason, and the read goes on.
- Values are kept as sent: no trimming; an empty field is ``None`` (CSV cannot tell it from an
  empty string); ``payload`` is the row as compact JSON of header -> field text.
- List fields are comma-separated with no escape for a comma inside an item. Lists of ids and
  codes (``orgSourcedIds``, ``grades``...) split on every comma, keeping any padding of an id;
  ``subjects`` are names, and standard ones hold commas ("Physical, Health, and Safety
  Education"), so there a comma followed by a space stays inside the name (machine-written
  lists put no space after the separator). An empty list field is ``[]``.

Records follow the OneRoster API client's conventions (:mod:`.normalize_oneroster`), so a
bundle and the API of the same district give the same canonical records: ``schools`` is every
org (the district too, told apart by ``org_type``); ``terms`` every academic session;
``users.csv`` splits by role as :func:`~.normalize_oneroster.user_entity` says (students;
guardian/parent/relative contacts; everyone else staff); ``userIds`` ``{stateId:X}`` gives the
state id; Skyward's ``metadata.skyward.*`` columns give what 1.1 lacks (grad year...).
``student_contacts`` (``sis_id`` ``"<student>|<contact>"``) come from the Skyward extension
``skyward_relationships.csv`` when the bundle has it, otherwise from contacts'
``agentSourcedIds`` with relationship ``guardian``, as the API client does.

A broken ``users.csv`` row is reported once: with the entity of its role when that is readable
and one of OneRoster's, else with ``students``. The ``agentSourcedIds`` fallback reports no
issues (the user entities do). Issues are :class:`~.normalize.Quarantined` items whose
``endpoint`` is the file name, plus the line.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from passport_pipeline.entities import ENTITIES, TEXT_LIST
from passport_pipeline.sources.errors import SourceError
from passport_pipeline.sources.normalize import BLANK, Quarantined, payload
from passport_pipeline.sources.normalize_oneroster import user_entity

ONEROSTER_VERSION = "1.1"
RELATIONSHIPS = "skyward_relationships"

SPEC_HEADERS: dict[str, tuple[str, ...]] = {
    "orgs": ("sourcedId", "status", "dateLastModified", "name", "type", "identifier", "parentSourcedId"),
    "academicSessions": ("sourcedId", "status", "dateLastModified", "title", "type", "startDate",
                         "endDate", "parentSourcedId", "schoolYear"),
    "courses": ("sourcedId", "status", "dateLastModified", "schoolYearSourcedId", "title", "courseCode",
                "grades", "orgSourcedId", "subjects", "subjectCodes"),
    "classes": ("sourcedId", "status", "dateLastModified", "title", "grades", "courseSourcedId",
                "classCode", "classType", "location", "schoolSourcedId", "termSourcedIds", "subjects",
                "subjectCodes", "periods"),
    "users": ("sourcedId", "status", "dateLastModified", "enabledUser", "orgSourcedIds", "role",
              "username", "userIds", "givenName", "familyName", "middleName", "identifier", "email",
              "sms", "phone", "agentSourcedIds", "grades", "password"),
    "enrollments": ("sourcedId", "status", "dateLastModified", "classSourcedId", "schoolSourcedId",
                    "userSourcedId", "role", "primary", "beginDate", "endDate"),
    "demographics": ("sourcedId", "status", "dateLastModified", "birthDate", "sex",
                     "americanIndianOrAlaskaNative", "asian", "blackOrAfricanAmerican",
                     "nativeHawaiianOrOtherPacificIslander", "white", "demographicRaceTwoOrMoreRaces",
                     "hispanicOrLatinoEthnicity", "countryOfBirthCode", "stateOfBirthAbbreviation",
                     "cityOfBirth", "publicSchoolResidenceStatus"),
    RELATIONSHIPS: ("studentSourcedId", "contactSourcedId", "status", "dateLastModified", "relationship",
                    "emergencyContact", "custodial", "pickupAllowed", "contactOrder"),
}
"""OneRoster 1.1 CSV column headers per file, in the spec's order (and our extension's)."""

USER_ROLES = frozenset({"administrator", "aide", "guardian", "parent", "proctor", "relative", "student",
                        "teacher"})
"""The roles OneRoster 1.1 defines (users of any other role are read as staff)."""

Row = dict[str, str]
Getter = str | Callable[[Row], "str | list[str] | None"]


def _value(row: Row, header: str) -> str | None:
    return row.get(header) or None


def _metadata(name: str) -> Callable[[Row], str | None]:
    return lambda row: _value(row, f"metadata.skyward.{name}")


_USER_ID = re.compile(r"\{([^:{}]*):([^{}]*)\}")


def _state_id(row: Row) -> str | None:
    """The state id from ``userIds`` (``{stateId:XYZ}``), else Skyward's metadata column."""
    for kind, identifier in _USER_ID.findall(row.get("userIds") or ""):
        if kind.lower().replace("_", "") in ("stateid", "state") and identifier:
            return identifier
    return _value(row, "metadata.skyward.stateId")


_PERSON: dict[str, Getter] = {
    "username": "username", "given_name": "givenName", "family_name": "familyName",
    "middle_name": "middleName", "preferred_first_name": _metadata("preferredFirstName"),
    "identifier": "identifier", "state_id": _state_id, "email": "email", "phone": "phone",
    "sms": "sms", "enabled_user": "enabledUser",
}


@dataclass(frozen=True)
class _Mapping:
    """How one entity is read: its file and each column's source (a header, or a function)."""

    file: str
    columns: dict[str, Getter]
    identity: tuple[str, ...] = ("sourcedId",)
    """The columns whose values, joined by ``|``, make the record's ``sis_id``."""

    @property
    def keys(self) -> tuple[str, ...]:
        """Columns a row must not leave blank (users: ``role`` too, as it decides the entity)."""
        return (*self.identity, "role") if self.file == "users" else self.identity

    def required(self) -> list[str]:
        named = [g for g in self.columns.values() if isinstance(g, str)]
        return list(dict.fromkeys([*self.keys, "status", "dateLastModified", *named]))


_MAPPINGS: dict[str, _Mapping] = {
    "schools": _Mapping("orgs", {"name": "name", "identifier": "identifier", "org_type": "type",
                                 "parent_sis_id": "parentSourcedId"}),
    "terms": _Mapping("academicSessions", {
        "title": "title", "term_type": "type", "start_date": "startDate", "end_date": "endDate",
        "parent_sis_id": "parentSourcedId", "school_year": "schoolYear"}),
    "courses": _Mapping("courses", {
        "title": "title", "course_code": "courseCode", "grades": "grades", "subjects": "subjects",
        "school_sis_id": "orgSourcedId", "school_year_sis_id": "schoolYearSourcedId"}),
    "classes": _Mapping("classes", {
        "title": "title", "class_code": "classCode", "class_type": "classType", "location": "location",
        "grades": "grades", "subjects": "subjects", "periods": "periods",
        "course_sis_id": "courseSourcedId", "school_sis_id": "schoolSourcedId",
        "term_sis_ids": "termSourcedIds"}),
    "students": _Mapping("users", {
        **_PERSON, "grades": "grades", "school_sis_ids": "orgSourcedIds",
        "primary_school_sis_id": _metadata("primaryOrgSourcedId"), "grad_year": _metadata("gradYear"),
        "birth_date": _metadata("birthDate")}),
    "staff": _Mapping("users", {
        **_PERSON, "role": "role", "school_sis_ids": "orgSourcedIds",
        "primary_school_sis_id": _metadata("primaryOrgSourcedId")}),
    "contacts": _Mapping("users", {**_PERSON, "role": "role"}),
    "student_contacts": _Mapping(RELATIONSHIPS, {
        "student_sis_id": "studentSourcedId", "contact_sis_id": "contactSourcedId",
        "relationship": "relationship", "emergency_contact": "emergencyContact", "custodial": "custodial",
        "pickup_allowed": "pickupAllowed", "contact_order": "contactOrder"},
        identity=("studentSourcedId", "contactSourcedId")),
    "enrollments": _Mapping("enrollments", {
        "user_sis_id": "userSourcedId", "class_sis_id": "classSourcedId", "school_sis_id": "schoolSourcedId",
        "role": "role", "primary": "primary", "begin_date": "beginDate", "end_date": "endDate"}),
    "demographics": _Mapping("demographics", {
        "birth_date": "birthDate", "sex": "sex",
        "american_indian_or_alaska_native": "americanIndianOrAlaskaNative", "asian": "asian",
        "black_or_african_american": "blackOrAfricanAmerican",
        "native_hawaiian_or_other_pacific_islander": "nativeHawaiianOrOtherPacificIslander",
        "white": "white", "demographic_race_two_or_more_races": "demographicRaceTwoOrMoreRaces",
        "hispanic_or_latino_ethnicity": "hispanicOrLatinoEthnicity",
        "country_of_birth_code": "countryOfBirthCode",
        "state_of_birth_abbreviation": "stateOfBirthAbbreviation", "city_of_birth": "cityOfBirth",
        "public_school_residence_status": "publicSchoolResidenceStatus"}),
}

SCHOOL_COLUMNS = {"courses": "school_sis_id", "classes": "school_sis_id", "enrollments": "school_sis_id",
                  "students": "school_sis_ids", "staff": "school_sis_ids"}
"""Entities that can be read per school, and the column naming the school(s)."""


class BundleError(SourceError):
    """The bundle, or one of its files, cannot be read as OneRoster 1.1 CSV."""


@dataclass(frozen=True)
class Issue(Quarantined):
    """A row quarantined instead of read: its file (``endpoint``), line, reason and raw text."""

    line: int
    """The physical line the row starts on (the header is line 1)."""
    record_id: str | None = None

    @property
    def file(self) -> str:
        return self.endpoint

    def __str__(self) -> str:
        return f"{self.file} line {self.line}: {self.reason}"


@dataclass
class Page:
    """Up to ``page_size`` canonical records, and the issues met while reading them."""

    records: list[dict] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)


class CsvBundle:
    """A OneRoster 1.1 CSV bundle, folder or ``.zip``; the manifest is checked on opening."""

    def __init__(self, path: str | Path, *, page_size: int = 1000) -> None:
        self.path = Path(path)
        self.page_size = page_size
        if self.path.is_dir():
            self._members = {p.name: p.name for p in self.path.iterdir() if p.is_file()}
        elif zipfile.is_zipfile(self.path):
            with zipfile.ZipFile(self.path) as archive:
                self._members = _zip_members(archive.namelist())
        elif not self.path.exists():
            raise BundleError(f"{self.path}: no such folder or zip file")
        else:
            raise BundleError(f"{self.path} is neither a folder nor a zip file: point the source at a "
                              "OneRoster CSV bundle")
        self.manifest = self._read_manifest()

    def processing(self, file: str) -> str:
        """How the bundle carries a file: ``bulk``, ``delta`` or ``absent``.

        The Skyward relationships extension counts as ``bulk`` when present but unlisted.
        """
        listed = self.manifest.get(f"file.{file}")
        if listed is None and file == RELATIONSHIPS and f"{file}.csv" in self._members:
            return "bulk"
        return listed or "absent"

    def entities(self) -> list[str]:
        """The canonical entities this bundle carries, in registry order."""
        def carried(entity: str) -> bool:
            file = _MAPPINGS[entity].file
            if entity == "student_contacts" and self.processing(file) == "absent":
                file = "users"
            return self.processing(file) != "absent"
        return [entity for entity in ENTITIES if carried(entity)]

    def schools(self) -> list[dict]:
        """The bundle's schools (orgs of type ``school``), as canonical records."""
        return [r for page in self.pages("schools") for r in page.records if r["org_type"] == "school"]

    def pages(self, entity: str, *, school: str | None = None) -> Iterator[Page]:
        """Canonical records of ``entity`` page by page, optionally only those of one school."""
        if school is not None and entity not in SCHOOL_COLUMNS:
            raise ValueError(f"{entity} cannot be read per school; read the whole bundle "
                             f"(per-school entities: {', '.join(SCHOOL_COLUMNS)})")
        mapping = _MAPPINGS[entity]
        if entity == "student_contacts" and self.processing(RELATIONSHIPS) == "absent":
            records = self._agent_links()
        else:
            self._require(mapping.file)
            records = self._records(entity, mapping)
        page = Page()
        for item in records:
            if isinstance(item, Issue):
                page.issues.append(item)
                if len(page.issues) >= self.page_size:
                    yield page
                    page = Page()
                continue
            if school is not None and not _in_school(item[SCHOOL_COLUMNS[entity]], school):
                continue
            page.records.append(item)
            if len(page.records) >= self.page_size:
                yield page
                page = Page()
        if page.records or page.issues:
            yield page

    def _records(self, entity: str, mapping: _Mapping) -> Iterator[dict | Issue]:
        record = _record_builder(entity, mapping)
        users = mapping.file == "users"
        for row, broken in self._rows(mapping.file, mapping.required(), mapping.keys):
            if broken is not None:
                if not users or _broken_user_entity(broken.role) == entity:
                    yield broken.issue
            elif not users or user_entity(row["role"]) == entity:
                yield record(row)

    def _agent_links(self) -> Iterator[dict]:
        """Links from contacts' ``agentSourcedIds`` (their students), as the OneRoster API
        client reads them without Skyward's extension: relationship ``guardian``, the contact's
        status and date, no emergency, custody, pickup or order."""
        self._require("users")
        required = ["sourcedId", "role", "status", "dateLastModified", "agentSourcedIds"]
        for row, broken in self._rows("users", required, ("sourcedId", "role")):
            if broken is not None or user_entity(row["role"]) != "contacts":
                continue
            raw = payload(row)
            for student in _split(row["agentSourcedIds"]):
                yield {
                    "sis_id": f"{student}|{row['sourcedId']}", "status": _value(row, "status"),
                    "date_last_modified": _value(row, "dateLastModified"), "student_sis_id": student,
                    "contact_sis_id": row["sourcedId"], "relationship": "guardian",
                    "emergency_contact": None, "custodial": None, "pickup_allowed": None,
                    "contact_order": None, "payload": raw,
                }

    def _require(self, file: str) -> None:
        if self.processing(file) == "absent":
            raise BundleError(f"{self.path.name}: the manifest does not list {file}.csv as bulk or delta, "
                              "so this bundle does not carry it")

    def _read_manifest(self) -> dict[str, str]:
        if "manifest.csv" not in self._members:
            raise BundleError(f"{self.path.name}: no manifest.csv — a OneRoster CSV bundle starts with one")
        manifest = {}
        for row, broken in self._rows("manifest", ["propertyName", "value"], ("propertyName",)):
            if broken is not None:
                raise BundleError(f"{self.path.name}: {broken.issue}")
            key = row["propertyName"]
            manifest[key] = row["value"].strip().lower() if key.startswith("file.") else row["value"]
        version = manifest.get("oneroster.version")
        if version != ONEROSTER_VERSION:
            raise BundleError(f"{self.path.name}: manifest.csv says oneroster.version {version!r}; "
                              f"this source reads OneRoster {ONEROSTER_VERSION} CSV bundles")
        for key, value in manifest.items():
            if key.startswith("file."):
                if value not in ("bulk", "delta", "absent"):
                    raise BundleError(f"{self.path.name}: manifest.csv gives {key} = {value!r}; "
                                      "allowed: bulk, delta, absent")
                if value != "absent" and f"{key[5:]}.csv" not in self._members:
                    raise BundleError(f"{self.path.name}: the manifest lists {key[5:]}.csv as {value}, "
                                      "but the bundle has no such file")
        return manifest

    @contextmanager
    def _open(self, file: str) -> Iterator[IO[bytes]]:
        member = self._members[f"{file}.csv"]
        try:
            if self.path.is_dir():
                with (self.path / member).open("rb") as stream:
                    yield stream
            else:
                with zipfile.ZipFile(self.path) as archive, archive.open(member) as stream:
                    yield stream
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise BundleError(f"{self.path.name}: {file}.csv could not be read to the end ({exc}); "
                              "the bundle is damaged: export it again") from exc

    def _rows(
        self, file: str, required: list[str], keys: tuple[str, ...]
    ) -> Iterator[tuple[Row, _Broken | None]]:
        """Each data row of ``file`` as header -> text, or why it is broken."""
        name = f"{file}.csv"
        with self._open(file) as stream:
            text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
            reader = _LineReader(text)
            first = next(reader, None)
            if first is None or not first[1]:
                raise BundleError(f"{self.path.name}: {name} has no header row"
                                  + (f" ({first[3]})" if first and first[3] else ""))
            header = first[1]
            missing = [h for h in required if h not in header]
            if missing or len(set(header)) != len(header) or _undecodable(header):
                problem = (f"lacks required columns {', '.join(missing)}" if missing
                           else "has a header that is not UTF-8" if _undecodable(header)
                           else "repeats a column name")
                spec = f" (OneRoster: {','.join(SPEC_HEADERS[file])})" if file in SPEC_HEADERS else ""
                raise BundleError(f"{self.path.name}: {name} {problem}; its header is "
                                  f"{','.join(_clean(h) for h in header)}{spec}")
            width, key_at = len(header), [header.index(key) for key in keys]
            for line, fields, raw, error in reader:
                if fields == []:
                    continue
                if (error is None and len(fields) == width and all(fields[i].strip() for i in key_at)
                        and not _SURROGATE.search(raw)):
                    yield dict(zip(header, fields)), None
                    continue
                reason = error or _problem(fields, raw, header, keys)
                values = dict(zip(header, fields or []))
                yield {}, _Broken(
                    Issue(name, reason, _readable(raw), line, _clean(values.get(keys[0])) or None),
                    values.get("role"),
                )


@dataclass(frozen=True)
class _Broken:
    issue: Issue
    role: str | None
    """The row's role field when readable (users.csv), to report it with the right entity."""


class _LineReader:
    """``csv.reader`` over a text stream, yielding (first line number, fields, raw text, error)."""

    def __init__(self, text: IO[str]) -> None:
        self._buffer: list[str] = []
        self._reader = csv.reader(self._lines(text))
        self._line = 0

    def _lines(self, text: IO[str]) -> Iterator[str]:
        for line in text:
            self._buffer.append(line)
            yield line

    def __iter__(self) -> _LineReader:
        return self

    def __next__(self) -> tuple[int, list[str] | None, str, str | None]:
        """(line the record starts on, its fields or None, its raw text, why it is unreadable)."""
        start = self._line + 1
        try:
            fields, error = next(self._reader), None
        except csv.Error as exc:
            fields, error = None, f"unreadable CSV: {exc}"
        self._line = self._reader.line_num
        raw, self._buffer = "".join(self._buffer), []
        return start, fields, raw, error


def _problem(fields: list[str], raw: str, header: list[str], keys: tuple[str, ...]) -> str | None:
    if _SURROGATE.search(raw):
        return "not valid UTF-8 text"
    if len(fields) != len(header):
        return f"{len(fields)} fields where the header has {len(header)}"
    row = dict(zip(header, fields))
    missing = [key for key in keys if not (row.get(key) or "").strip()]
    if missing:
        return f"no {' and no '.join(missing)}"
    return None


_SURROGATE = re.compile("[\udc80-\udcff]")
"""Bytes that were not UTF-8, as the ``surrogateescape`` decoder keeps them."""


def _undecodable(fields: list[str]) -> bool:
    return any(_SURROGATE.search(f) for f in fields)


def _clean(text: str | None) -> str | None:
    """Text with undecodable bytes (kept as surrogates) replaced by U+FFFD."""
    if text is None:
        return None
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _readable(raw: str, limit: int = 2000) -> str:
    text = _clean(raw).rstrip("\r\n")
    return text if len(text) <= limit else text[:limit] + "…"


def _split(value: str | None) -> list[str]:
    """A list field of ids or codes: its comma-separated items."""
    return value.split(",") if value else []


_NAME_SEPARATOR = re.compile(r",(?! )")


def _split_names(value: str | None) -> list[str]:
    """A list field of names: split on commas, except a comma followed by a space."""
    return _NAME_SEPARATOR.split(value) if value else []


def _record_builder(entity: str, mapping: _Mapping) -> Callable[[Row], dict]:
    """The function making a canonical record of ``entity`` from a (sound) row of its file."""
    lists = {c for c, kind in ENTITIES[entity].all_columns.items() if kind == TEXT_LIST}
    plain = [(c, h) for c, h in mapping.columns.items() if isinstance(h, str) and c not in lists]
    listed = [(c, h, _split_names if c == "subjects" else _split)
              for c, h in mapping.columns.items() if isinstance(h, str) and c in lists]
    computed = [(c, get) for c, get in mapping.columns.items() if not isinstance(get, str)]
    blank, identity = BLANK[entity], mapping.identity

    def record(row: Row) -> dict:
        built = blank.copy()
        built["sis_id"] = "|".join([row[k] for k in identity])
        built["status"] = row["status"] or None
        built["date_last_modified"] = row["dateLastModified"] or None
        for column, header in plain:
            built[column] = row[header] or None
        for column, header, split in listed:
            built[column] = split(row[header])
        for column, get in computed:
            built[column] = get(row)
        built["payload"] = payload(row)
        return built

    return record


def _broken_user_entity(role: str | None) -> str:
    """Which user entity reports a broken users.csv row: its role's, when that is one of
    OneRoster's (not a shifted field), else ``students``."""
    known = role is not None and role.strip().lower() in USER_ROLES
    return user_entity(role) if known else "students"


def _in_school(value: str | list[str] | None, school: str) -> bool:
    return school in value if isinstance(value, list) else value == school


def _zip_members(names: list[str]) -> dict[str, str]:
    """File name -> zip member, for a bundle at the zip's root or in one folder inside it."""
    manifests = sorted((n for n in names if PurePosixPath(n).name == "manifest.csv"), key=len)
    folder = str(PurePosixPath(manifests[0]).parent) if manifests else "."
    members = {}
    for name in names:
        path = PurePosixPath(name)
        if str(path.parent) == folder and not name.endswith("/"):
            members[path.name] = name
    return members
