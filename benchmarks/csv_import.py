"""CSV import benchmark: our OneRoster CSV landing vs DuckDB's ``read_csv`` into plain tables, one run.

For each district size a OneRoster 1.1 bundle is exported from the generated district (cached
beside it in ``data/bench/``, as a folder). Then, each in a fresh child process on a fresh
warehouse file with the warehouse's settings (DuckDB memory limit, insertion order not kept):

- the **baseline**: ``CREATE TABLE <file> AS SELECT * FROM read_csv(<file>, all_varchar = true, ...)``
  for every file our landing reads, nothing else, with the spec's dialect (comma, double quote):
  left to guess, DuckDB's sniffer takes a file whose first rows hold no quote for one without
  quoting, and fails on the 1M district's classes.csv;
- **ours**: :func:`passport_pipeline.extract.extract_source` of the bundle (canonical columns, the
  row's JSON payload, quarantine checks, bookkeeping in ``sync.*``).

Reported: each side's seconds, the ratio of our time to the baseline's (target <= 1.5), and each
child's peak RSS (VmHWM) (target: ours at 1M within 1.5x of ours at 100k). The baseline runs before
and after ours and the mean is used, to even out a shared machine's noise.

Usage: ``python -m benchmarks.csv_import --sizes 100000 1000000 [--root DIR]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.run import BENCH_ROOT, RESULTS, ROOT, SEED, child_result

FILES = ("orgs", "academicSessions", "courses", "classes", "users", "enrollments", "demographics",
         "skyward_relationships")
"""The bundle files our landing reads (userProfiles and the gradebook files are not exported)."""

BASELINE = r"""
import json, sys, time, duckdb
from passport_pipeline.warehouse.connection import MEMORY_LIMIT
bundle, warehouse_path, *files = sys.argv[1:]
con = duckdb.connect(warehouse_path, config={"memory_limit": MEMORY_LIMIT, "preserve_insertion_order": False})
started = time.perf_counter()
rows = 0
for name in files:
    con.execute(f"CREATE TABLE \"{name}\" AS SELECT * FROM read_csv('{bundle}/{name}.csv', all_varchar = true,"
                " header = true, delim = ',', quote = '\"', escape = '\"')")
    rows += con.execute(f"SELECT count(*) FROM \"{name}\"").fetchone()[0]
seconds = time.perf_counter() - started
con.close()
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"rows": rows, "seconds": seconds, "peak_rss_mb": round(int(hwm.split()[1]) / 1024)}))
"""

OURS = r"""
import json, sys, time
from passport_pipeline.config import CsvBundleSource
from passport_pipeline.extract import extract_source
from passport_pipeline.warehouse.connection import Warehouse
bundle, warehouse_path = sys.argv[1:]
with Warehouse(warehouse_path) as warehouse:
    started = time.perf_counter()
    result = extract_source(warehouse, CsvBundleSource(name="bench", path=bundle), run_id="bench")
    seconds = time.perf_counter() - started
records = sum(o.rows for o in result.entities.values())
quarantined = sum(o.quarantined for o in result.entities.values())
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"records": records, "quarantined": quarantined, "seconds": seconds, "failed": result.failed,
                  "peak_rss_mb": round(int(hwm.split()[1]) / 1024)}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--root", type=Path, default=None, help="where districts and bundles are generated (kept)")
    parser.add_argument("--baseline-runs", type=int, choices=[1, 2], default=2,
                        help="2: baseline before and after ours, averaged (default); 1: before only")
    args = parser.parse_args()
    root = args.root or BENCH_ROOT
    rows = [measure(students, root, args.baseline_runs) for students in args.sizes]
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"csv-import-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(rows, indent=2))
    print()
    print(markdown(rows))
    print(f"\n(results saved to {out.relative_to(ROOT)})")
    return 0


def bundle_of(students: int, root: Path) -> Path:
    """The district's OneRoster 1.1 bundle (a folder), exported once and kept."""
    from passport_pipeline.simulator.csv_bundle import export_bundle
    from passport_pipeline.simulator.district import DirtyData, ensure_district

    district = ensure_district(SEED, students, DirtyData(), root=root)
    folder = district.with_name(f"{district.stem}-bundle-v1.1")
    if not (folder / "manifest.csv").exists():
        partial = folder.with_name(folder.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        export_bundle(district, partial)
        partial.rename(folder)
    return folder


def measure(students: int, root: Path, baseline_runs: int = 2) -> dict:
    """Baseline, ours, baseline again, each in its own process on a fresh warehouse file."""
    bundle = bundle_of(students, root)
    work = Path(tempfile.mkdtemp(prefix="passport-csv-bench-"))
    try:
        def baseline(run: int) -> dict:
            warehouse = work / f"baseline-{run}.duckdb"
            return child_result([sys.executable, "-c", BASELINE, str(bundle), str(warehouse), *FILES])

        first = baseline(1)
        ours = child_result([sys.executable, "-c", OURS, str(bundle), str(work / "ours.duckdb")])
        second = baseline(2) if baseline_runs == 2 else first
        size_mb = sum((bundle / f"{name}.csv").stat().st_size for name in FILES) / 1e6
    finally:
        shutil.rmtree(work, ignore_errors=True)
    baseline_seconds = (first["seconds"] + second["seconds"]) / 2
    row = {
        "students": students,
        "bundle_mb": round(size_mb),
        "records": ours["records"],
        "quarantined": ours["quarantined"],
        "baseline_rows": first["rows"],
        "ours_seconds": round(ours["seconds"], 1),
        "baseline_seconds": round(baseline_seconds, 1),
        "baseline_runs_seconds": [round(first["seconds"], 1), round(second["seconds"], 1)],
        "ratio": round(ours["seconds"] / baseline_seconds, 2),
        "ours_peak_rss_mb": ours["peak_rss_mb"],
        "baseline_peak_rss_mb": max(first["peak_rss_mb"], second["peak_rss_mb"]),
        "failed": ours["failed"],
    }
    print(f"CSV import at {students:,} students: {row}", flush=True)
    return row


def markdown(rows: list[dict]) -> str:
    lines = ["| district | bundle | records landed | ours | read_csv into tables | ratio (target ≤ 1.5) "
             "| our peak RSS | baseline peak RSS |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['students']:,} students | {r['bundle_mb']:,} MB | {r['records']:,} "
                     f"| {r['ours_seconds']:,} s | {r['baseline_seconds']:,} s | **{r['ratio']}** "
                     f"| {r['ours_peak_rss_mb']:,} MB | {r['baseline_peak_rss_mb']:,} MB |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
