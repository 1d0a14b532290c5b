"""Transform benchmark: our rule stages vs one hand-written DuckDB statement per entity, side by side.

For each district size (the demo's dirty data, so checks find something), the raw tables are
extracted once from the simulator over OneRoster and cached next to the district. Then, each in a
fresh child process working on its own copy of those raw tables:

- **ours**: :func:`passport_pipeline.rules.chain.transform_source` with the rules in
  :data:`RULES` — schools mapping, mapped, filtered and staged tables, issues in ``sync.issues``;
- the **baseline**: :mod:`benchmarks.transform_baseline`, one ``CREATE TABLE AS`` per entity
  written by hand for exactly these rules (the same mapping, prefix, de-duplication, scope,
  filters, include linked, requirement, format and integrity checks, masking), plus one statement
  collecting the same issues.

Reported: seconds of each, their ratio (ours / baseline; target <= 2), both children's peak RSS
(VmHWM), and rows staged per entity (which must be equal: the same work).

Usage: ``python -m benchmarks.transform --sizes 100000 1000000 [--root DIR]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.run import BENCH_ROOT, RESULTS, ROOT, SEED, _free_port, _wait_for, child_result

RULES = {
    "sis_id_prefix": "b-",
    "advanced": {"staff_scope": "active_teachers_only", "sync_emergency_contacts": False},
    "attributes": {
        "students": {"preferred_first_name": {"coalesce": ["preferred_first_name", "given_name"]}},
        "staff": {"username": {"lower": {"concat": ["given_name", {"value": "."}, "family_name"]}}},
    },
    "filters": {
        "students": {"rules": [{"name": "enrolled", "when": [
            {"attribute": "status", "operator": "equals", "value": "active"},
            {"attribute": "grades", "operator": "is_not_empty"}]}]},
        "enrollments": {"rules": [{"name": "current", "when": [
            {"attribute": "end_date", "operator": "after", "value": "2026-01-01"}]}]},
    },
    "requirements": {
        "students": {"given_name": "skip_if_missing", "family_name": "skip_if_missing", "email": "report_if_missing"},
        "staff": {"given_name": "skip_if_missing", "family_name": "skip_if_missing", "email": "report_if_missing"},
        "demographics": {"birth_date": "mask"},
    },
}
"""The rules both sides apply: a bit of every kind a district configures."""

TODAY = "2026-11-29"

EXTRACT = r"""
import sys
from passport_pipeline.config import OneRosterSource
from passport_pipeline.extract import extract_source
from passport_pipeline.warehouse.connection import Warehouse
base, warehouse_path = sys.argv[1:]
source = OneRosterSource(name="bench", base_url=base, token_url=base + "/oauth/token",
                         credentials={"client_id_env": "BENCH_ID", "client_secret_env": "BENCH_SECRET"})
env = {"BENCH_ID": "passport-demo", "BENCH_SECRET": "passport-demo-secret"}
with Warehouse(warehouse_path) as warehouse:
    result = extract_source(warehouse, source, run_id="extract", env=env)
assert not result.failed, result.failed
"""

OURS = r"""
import datetime as dt, json, sys, time
from benchmarks.transform import RULES, TODAY
from passport_pipeline.config import CsvBundleSource
from passport_pipeline.rules.chain import transform_source
from passport_pipeline.warehouse.connection import Warehouse
warehouse_path, = sys.argv[1:]
source = CsvBundleSource.model_validate({"name": "bench", "app": "oneroster_csv", "path": ".", **RULES},
                                         context={"config_dir": "."})
started = time.perf_counter()
with Warehouse(warehouse_path) as warehouse:
    reports = transform_source(warehouse, source, "bench", dt.date.fromisoformat(TODAY))
    staged = {e: c.rows_out for e, c in reports[-1].entities.items()}
    (issues,) = warehouse.reading().execute("SELECT count(*) FROM sync.issues WHERE run_id = 'bench'").fetchone()
seconds = time.perf_counter() - started  # opening and closing the file included, as the baseline's
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"seconds": seconds, "staged": staged, "issues": issues,
                  "peak_rss_mb": round(int(hwm.split()[1]) / 1024)}))
"""

BASELINE = r"""
import json, sys, time
from benchmarks.transform_baseline import run_baseline
warehouse_path, = sys.argv[1:]
started = time.perf_counter()
staged, issues = run_baseline(warehouse_path)
seconds = time.perf_counter() - started
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"seconds": seconds, "staged": staged, "issues": issues,
                  "peak_rss_mb": round(int(hwm.split()[1]) / 1024)}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--root", type=Path, default=None, help="where districts and raw tables are cached")
    args = parser.parse_args()
    root = args.root or BENCH_ROOT
    rows = [measure(students, root) for students in args.sizes]
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"transform-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(rows, indent=2))
    print()
    print(markdown(rows))
    print(f"\n(results saved to {out.relative_to(ROOT)})")
    return 0


def raw_tables(students: int, root: Path) -> Path:
    """A warehouse holding the raw tables of the dirty demo district of ``students``, cached."""
    from passport_pipeline.simulator.district import DirtyData, ensure_district

    district = ensure_district(SEED, students, DirtyData.demo(), root=root)
    cached = root / f"raw-{district.stem}.duckdb"
    if cached.exists():
        return cached
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "passport_pipeline.cli", "simulate", "--store", str(district), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    partial = cached.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    try:
        _wait_for(f"http://127.0.0.1:{port}/admin/state", server, timeout=600)
        subprocess.run([sys.executable, "-c", EXTRACT, f"http://127.0.0.1:{port}", str(partial)],
                       check=True, cwd=ROOT)
    finally:
        server.terminate()
        server.wait(timeout=60)
    partial.rename(cached)
    return cached


def measure(students: int, root: Path) -> dict:
    """Ours, then the baseline, each on a fresh copy of the raw tables."""
    raw = raw_tables(students, root)
    work = Path(tempfile.mkdtemp(prefix="passport-transform-bench-"))
    try:
        results = {}
        for name, script in (("ours", OURS), ("baseline", BASELINE)):
            copy = work / f"{name}.duckdb"
            shutil.copyfile(raw, copy)
            results[name] = child_result([sys.executable, "-c", script, str(copy)])
            print(f"  {name} at {students:,} students: {results[name]['seconds']:.1f} s", flush=True)
            copy.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ours, baseline = results["ours"], results["baseline"]
    row = {
        "students": students,
        "ours_seconds": round(ours["seconds"], 1),
        "baseline_seconds": round(baseline["seconds"], 1),
        "ratio": round(ours["seconds"] / baseline["seconds"], 2),
        "ours_peak_rss_mb": ours["peak_rss_mb"],
        "baseline_peak_rss_mb": baseline["peak_rss_mb"],
        "ours_issues": ours["issues"],
        "baseline_issues": baseline["issues"],
        "staged": ours["staged"],
        "same_rows": ours["staged"] == baseline["staged"],
    }
    if not row["same_rows"]:
        row["baseline_staged"] = baseline["staged"]
    print(f"transform at {students:,} students: {row}", flush=True)
    return row


def markdown(rows: list[dict]) -> str:
    lines = ["| district | rows staged | ours | one statement per entity | ratio | our peak RSS | same rows |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['students']:,} students | {sum(r['staged'].values()):,} | {r['ours_seconds']} s | "
                     f"{r['baseline_seconds']} s | **{r['ratio']}** | {r['ours_peak_rss_mb']} MB | {r['same_rows']} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
