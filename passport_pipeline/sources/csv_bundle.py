"""The ``oneroster_csv`` source: a OneRoster 1.1 or 1.2 CSV bundle (folder or .zip), landed by DuckDB.

A bundle is a snapshot of the files its manifest lists, so a file read to its end is complete for
every school at once. Each OneRoster type is one read — orgs, academicSessions, courses, classes,
users (with roles.csv in 1.2, and Skyward's skyward_relationships.csv extension), enrollments,
demographics — landed through :mod:`~passport_pipeline.warehouse.csv_landing` with the same
field map as the API (:mod:`~passport_pipeline.warehouse.normalize_sql_oneroster`).

Reading rules:

- ``manifest.csv`` must exist and say ``oneroster.version`` 1.1 or 1.2; each ``file.<name>`` is
  ``bulk``, ``delta`` or ``absent``. File names, manifest keys and values, and column headers are
  matched case-insensitively; a bundle may sit at a zip's root or in one folder inside it.
- ``absent`` (or not listed) means *not provided*: :meth:`CsvBundle.reads` says so per read,
  extraction records its entities as absent, and the bundle never raises for them. The Skyward
  relationships extension counts as ``bulk`` when present but unlisted; without it, contacts'
  ``agentSourcedIds`` give the links, as the API client reads them.
- Each file the sync reads is either readable or not, for a reason named once
  (:meth:`CsvBundle.files`): listed but missing, no header, a header that is not UTF-8 or repeats
  a name, no ``sourcedId`` column, users.csv with neither a role column nor roles.csv. Landing an
  unreadable file raises :class:`BundleError`; other reads go on.
- Broken rows become quarantine issues naming file, line and reason, and the read goes on.
- Credential-like columns (users.csv's ``password``) are never stored; userProfiles.csv, whose
  rows are credentials, is not read at all.

A zip's members are copied to a private temporary folder for DuckDB to read, and removed after.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath

import duckdb

from passport_pipeline.entities import ENTITIES
from passport_pipeline.sources.errors import SourceError
from passport_pipeline.sources.reads import Read
from passport_pipeline.warehouse.csv_landing import CsvFile, Issue, carried, count_file, joins, land_file, school_ids
from passport_pipeline.warehouse.normalize_sql_oneroster import ONEROSTER_SQL
from passport_pipeline.warehouse.raw import Extraction

__all__ = ["BundleError", "BundleFile", "CsvBundle", "Issue"]

VERSION = re.compile(r"1\.[12](\.\d+)?")
"""The ``oneroster.version`` values read: 1.1 and 1.2 (with a patch number or not)."""
PROCESSING = ("bulk", "delta", "absent")
RELATIONSHIPS = "skyward_relationships"
NOT_READ = {"userprofiles": "holds credentials, which the sync never stores"}
"""Files the sync could read but will not, and why."""


READS = tuple(sorted((Read(kind, tuple(mapping.rows), whole_file=True) for kind, mapping in ONEROSTER_SQL.items()),
                    key=lambda read: list(ENTITIES).index(read.lands[0])))
"""A bundle's reads, one per OneRoster type (a bundle's own :meth:`CsvBundle.reads` say which are absent)."""


CARRIED = {entity: columns for mapping in ONEROSTER_SQL.values() for entity, columns in carried(mapping).items()}
"""Per entity, the columns a bundle's payload leaves out: header (lower case) -> the canonical column holding it."""


def carried_column(entity: str, attribute: str) -> str | None:
    """The canonical column of ``entity`` that holds what the source attribute ``attribute``
    (``payload.<path>`` or ``metadata.<path>``) names in a bundle's row, which the payload therefore
    leaves out; None when the payload keeps it, or ``attribute`` reads no payload."""
    head, _, path = attribute.partition(".")
    if head == "metadata":
        path = f"metadata.{path}"
    elif head != "payload":
        return None
    first = path.split(".")[0]
    return CARRIED.get(entity, {}).get((path if first.lower() == "metadata" else first).lower())


class BundleError(SourceError):
    """The bundle, or one of its files, cannot be read as a OneRoster CSV bundle."""


@dataclass(frozen=True)
class BundleFile:
    """One file of the bundle as the sync sees it: how the manifest carries it, what it lands, and
    whether it can be read (``problem`` says why not; None when it can, or is absent)."""

    name: str
    processing: str
    lands: tuple[str, ...] = ()
    """The entities its read lands (empty for a file read with another, or not read)."""
    read_with: str | None = None
    """The file whose read gathers this one's rows (roles.csv: users.csv)."""
    problem: str | None = None
    member: str | None = None
    header: tuple[str, ...] = ()

    @property
    def readable(self) -> bool:
        return self.processing != "absent" and self.problem is None

    def __str__(self) -> str:
        if self.processing == "absent":
            what = "not provided" + (f": {', '.join(self.lands)} will be recorded as absent" if self.lands else "")
        elif self.problem:
            what = f"cannot be read: {self.problem}"
        elif self.lands:
            what = f"readable; lands {', '.join(self.lands)}"
        elif self.read_with:
            what = f"readable; read with {self.read_with}"
        else:
            what = f"the sync does not read it{_not_read(self.name)}"
        return f"{self.name} ({self.processing}): {what}"


class CsvBundle:
    """A OneRoster 1.1 or 1.2 CSV bundle, folder or ``.zip``; the manifest is checked on opening."""

    max_concurrency = 1
    """Reads land one after another: each is one DuckDB statement set on the warehouse's writer."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            self._zipped, entries = False, [p.name for p in self.path.iterdir() if p.is_file()]
        elif zipfile.is_zipfile(self.path):
            with zipfile.ZipFile(self.path) as archive:
                self._zipped, entries = True, _bundle_entries(archive.namelist())
        elif not self.path.exists():
            raise BundleError(f"{self.path}: no such folder or zip file")
        else:
            raise BundleError(f"{self.path} is neither a folder nor a zip file: point the source at a "
                              "OneRoster CSV bundle")
        self._members: dict[str, list[str]] = {}
        """File name (lower case) -> the bundle's entries of that name (a folder's files, a zip's entries)."""
        for entry in entries:
            self._members.setdefault(PurePosixPath(entry).name.lower(), []).append(entry)
        self.manifest = self._read_manifest()
        self.version = self.manifest["oneroster.version"][:3]

    def processing(self, file: str) -> str:
        """How the bundle carries ``file`` (without ``.csv``): ``bulk``, ``delta`` or ``absent``."""
        listed = self.manifest.get(f"file.{file.lower()}")
        if listed is None and file == RELATIONSHIPS and f"{file}.csv" in self._members:
            return "bulk"
        return listed or "absent"

    @cached_property
    def _files(self) -> dict[str, BundleFile]:
        files = {}
        named = {key[5:] for key in self.manifest if key.startswith("file.")}
        joined = {join.file.lower() for mapping in ONEROSTER_SQL.values() for join in joins(mapping.fields)
                  if f"{join.file.lower()}.csv" in self._members}
        for stem in sorted(named | {t.lower() for t in ONEROSTER_SQL} | joined):
            files[stem] = self._describe(stem)
        for stem, described in files.items():
            role = any(h.strip().lower() == "role" for h in described.header)
            if stem == "users" and described.readable and not role:
                roles = files.get("roles")
                if roles is None or not roles.readable:
                    files[stem] = _with(described, problem="it has no role column, and the bundle does not carry "
                                                  "roles.csv (OneRoster 1.2 keeps users' roles there), so "
                                                  "students, staff and contacts cannot be told apart")
        return files

    def files(self) -> list[BundleFile]:
        """Every file the manifest lists or the sync reads, one line each (``str()``): what the manifest
        says, what it lands, and whether it can be read or why not."""
        return list(self._files.values())

    def reads(self) -> list[Read]:
        """The bundle's reads — one per OneRoster type, named like its file, with the entities it lands —
        each ``absent`` when the bundle does not provide its file."""
        return [dataclasses.replace(read, absent=self._files[read.name.lower()].processing == "absent",
                                    delta=self._files[read.name.lower()].processing == "delta")
                for read in READS]

    def entities(self) -> list[str]:
        """The canonical entities this bundle provides."""
        return [entity for read in self.reads() if not read.absent for entity in read.lands]

    def land(self, read: str, con: duckdb.DuckDBPyConnection, extractions: Mapping[str, Extraction]) -> list[Issue]:
        """Land the read ``read`` on the writing cursor ``con``: its entities' rows into ``extractions``
        (entity -> its pull of scope ``*``; entities not in it are not landed), broken rows as issues of
        the first one's pull. Returns the issues. Raises :class:`BundleError` when the read's file (or
        one it needs) cannot be read; the cursor's transaction may then be aborted: roll it back."""
        mapping = ONEROSTER_SQL[read]
        main = self._files[read.lower()]
        if main.processing == "absent":
            raise BundleError(f"{self.path.name}: {main}; there is nothing to land")
        carried = (self._files.get(join.file.lower()) for join in joins(mapping.fields))
        needed = [main, *(file for file in carried if file is not None and file.processing != "absent")]
        for file in needed:
            if file.problem:
                raise BundleError(f"{self.path.name}: {file}")
        quarantine = next((entity for entity in mapping.rows if entity in extractions), None)
        if quarantine is None:
            return []
        with self._on_disk(needed) as (paths, spill):
            files = {f.name: CsvFile(f.name, paths[f.name], f.header) for f in needed}
            joined = {join.file: files[f"{join.file}.csv"] for join in joins(mapping.fields)
                      if f"{join.file}.csv" in files}
            try:
                return land_file(con, mapping, files[main.name], joined, extractions, quarantine, spill)
            except duckdb.Error as exc:
                raise BundleError(f"{self.path.name}: {main.name} could not be landed ({exc})") from exc

    def count(self, file: str) -> tuple[int, list[Issue]]:
        """A readable file's records (``users.csv`` or ``users``), and its rows DuckDB cannot read (for
        Test Connection: a whole read of the file, without landing it)."""
        described = self._files[file.lower().removesuffix(".csv")]
        if not described.readable:
            raise BundleError(f"{self.path.name}: {described}")
        with self._on_disk([described]) as (paths, spill):
            try:
                return count_file(CsvFile(described.name, paths[described.name], described.header), spill)
            except duckdb.Error as exc:
                raise BundleError(f"{self.path.name}: {described.name} could not be read ({exc})") from exc

    def schools(self) -> dict[str, str | None]:
        """The bundle's schools (orgs of type ``school``): sourcedId -> identifier."""
        orgs = self._files["orgs"]
        if not orgs.readable:
            raise BundleError(f"{self.path.name}: {orgs}")
        with self._on_disk([orgs]) as (paths, spill):
            return school_ids(CsvFile(orgs.name, paths[orgs.name], orgs.header), spill)

    def close(self) -> None:
        """Nothing to let go of: each read opens and removes what it needs."""

    def _describe(self, stem: str) -> BundleFile:
        kind = next((t for t in ONEROSTER_SQL if t.lower() == stem), None)
        joined = next(((t, join) for t, m in ONEROSTER_SQL.items() for join in joins(m.fields)
                       if join.file.lower() == stem), None)
        members = self._members.get(f"{stem}.csv", [])
        name = f"{kind or (joined[1].file if joined else stem)}.csv"
        if not (kind or joined):
            name = PurePosixPath(members[0]).name if members else f"{self._spelling.get(stem, stem)}.csv"
        found = BundleFile(name, self.processing(stem), tuple(ONEROSTER_SQL[kind].rows) if kind else (),
                           f"{joined[0]}.csv" if joined else None)
        if found.processing == "absent" or not (kind or joined):
            return found
        if not members:
            return _with(found, problem=f"the manifest lists it as {found.processing}, but the bundle has no such file")
        if len(members) > 1:
            return _with(found, problem=f"the bundle has {len(members)} files of that name ({', '.join(members)})")
        found = _with(found, member=members[0])
        try:
            found = _with(found, header=self._header(members[0]))
        except BundleError as exc:
            return _with(found, problem=str(exc))
        key = joined[1].on if joined else "sourcedId"
        if not any(h.strip().lower() == key.lower() for h in found.header):
            return _with(found, problem=f"its header has no {key} column")
        return found

    def _header(self, member: str) -> tuple[str, ...]:
        """A file's header as sent (a byte order mark dropped); why not, as a :class:`BundleError`."""
        with self._open(member) as stream:
            text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
            header = next(csv.reader(text), None)
        if not header:
            raise BundleError("it has no header row")
        if any(re.search("[\udc80-\udcff]", h) for h in header):
            raise BundleError("its header is not UTF-8 text")
        if any(re.search("[\x00-\x1f]", h) for h in header):
            raise BundleError("its header has control characters in a column name")
        seen = [h.strip().lower() for h in header if h.strip()]
        if len(set(seen)) != len(seen):
            raise BundleError(f"its header repeats a column name ({','.join(header)})")
        return tuple(header)

    def _read_manifest(self) -> dict[str, str]:
        members = self._members.get("manifest.csv", [])
        if not members:
            raise BundleError(f"{self.path.name}: no manifest.csv — a OneRoster CSV bundle starts with one")
        with self._open(members[0]) as stream:
            text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
            rows = list(csv.reader(text))
        if not rows or [h.strip().lower() for h in rows[0][:2]] != ["propertyname", "value"]:
            raise BundleError(f"{self.path.name}: manifest.csv does not start with the header propertyName,value")
        manifest, self._spelling = {}, {}
        for row in rows[1:]:
            if len(row) >= 2 and row[0].strip():
                key = row[0].strip()
                if key.lower().startswith("file."):
                    self._spelling[key[5:].lower()] = key[5:]
                    key = key.lower()
                manifest[key] = row[1].strip()
        version = manifest.get("oneroster.version")
        if version is None or not VERSION.fullmatch(version):
            raise BundleError(f"{self.path.name}: manifest.csv says oneroster.version {version!r}; this source "
                              "reads OneRoster 1.1 and 1.2 CSV bundles")
        for key, value in manifest.items():
            if key.startswith("file."):
                manifest[key] = value.lower()
                if value.lower() not in PROCESSING:
                    raise BundleError(f"{self.path.name}: manifest.csv gives {key} = {value!r}; "
                                      "allowed: bulk, delta, absent")
        return manifest

    @contextmanager
    def _open(self, member: str) -> Iterator[io.BufferedIOBase]:
        try:
            if not self._zipped:
                with (self.path / member).open("rb") as stream:
                    yield stream
            else:
                with zipfile.ZipFile(self.path) as archive, archive.open(member) as stream:
                    yield stream
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            raise BundleError(f"{self.path.name}: {member} could not be read to the end ({exc}); "
                              "the bundle is damaged: export it again") from exc

    @contextmanager
    def _on_disk(self, files: list[BundleFile]) -> Iterator[tuple[dict[str, Path], Path]]:
        """The files as paths DuckDB can read (a zip's copied to a private temporary folder, removed
        after), and a folder DuckDB may spill to."""
        with tempfile.TemporaryDirectory(prefix="passport-bundle-") as folder:
            paths = {}
            for file in files:
                if not self._zipped:
                    paths[file.name] = self.path / file.member
                    continue
                paths[file.name] = Path(folder) / file.name
                with self._open(file.member) as stream, paths[file.name].open("wb") as copy:
                    try:
                        shutil.copyfileobj(stream, copy, 1 << 20)
                    except (zipfile.BadZipFile, EOFError, OSError) as exc:
                        raise BundleError(f"{self.path.name}: {file.name} could not be read to the end ({exc}); "
                                          "the bundle is damaged: export it again") from exc
            yield paths, Path(folder)

    credential = ""
    """A bundle has no credential: opening it is all the access it needs."""

    def authenticate(self) -> Access:
        """Nothing to ask: opening the bundle read its manifest, whose files are counted here."""
        from passport_pipeline.sources.reads import Access

        listed = sum(file.processing != "absent" for file in self.files())
        return Access(f"opened a OneRoster {self.version} bundle", (f"its manifest lists {listed} files",),
                      sees="the bundle holds")

    def probes(self) -> tuple[Probe, ...]:
        """Test Connection's reads: every file of :meth:`files`, each feeding what the bundle's
        :meth:`reads` land from it and read whole; an absent file only if the sync would read it."""
        from passport_pipeline.sources.reads import Probe

        reads = {read.name.lower(): read for read in self.reads()}
        found = []
        for file in self.files():
            stem = file.name.lower().removesuffix(".csv")
            feeds = reads[stem].lands if stem in reads else ()
            note = f"read with {file.read_with}" if file.read_with else ""
            if file.processing == "absent":
                if feeds or note:
                    found.append(Probe(file.name, feeds, absent=True, note=note))
            elif not (feeds or note or file.problem):
                found.append(Probe(file.name, skip=f"the sync does not read it{_not_read(file.name)}"))
            else:
                found.append(Probe(file.name, feeds, whole=True, page_size=None, note=note,
                                   schools=("sourcedId", "identifier") if "schools" in feeds else None))
        return tuple(found)

    def sample(self, probe: Probe, ids: Mapping[str, str]) -> Sample:
        """A probe's file read whole by DuckDB without landing it: its records and the rows that cannot
        be read, with the schools (sourcedId, identifier) when it holds them."""
        from passport_pipeline.sources.reads import Sample

        file = self._files[probe.name.lower().removesuffix(".csv")]
        if file.problem:
            raise BundleError(f"cannot be read: {file.problem}")
        rows, broken = self.count(file.name)
        schools = [dict(zip(probe.schools, pair)) for pair in self.schools().items()] if probe.schools else []
        return Sample(rows, total=rows, records=schools, unreadable=tuple(broken))

    def redact(self, text: str) -> str:
        """``text`` as it is: a bundle holds no secret."""
        return text


def _with(file: BundleFile, **changes) -> BundleFile:
    return dataclasses.replace(file, **changes)


def _not_read(name: str) -> str:
    why = NOT_READ.get(name.lower().removesuffix(".csv"))
    return f" ({why})" if why else ""


def _bundle_entries(names: list[str]) -> list[str]:
    """The zip entries of the bundle: at the zip's root, or in the one folder holding manifest.csv."""
    manifests = sorted((n for n in names if PurePosixPath(n).name.lower() == "manifest.csv"), key=len)
    folder = str(PurePosixPath(manifests[0]).parent) if manifests else "."
    return [n for n in names if str(PurePosixPath(n).parent) == folder and not n.endswith("/")]
