"""Extraction benchmark: our OneRoster extraction vs a minimal client, side by side, one run.

For each district size the simulator runs in its own process, serving a generated district.
Then, each in a fresh child process:

- the **baseline**: a minimal client that gets a token and downloads and JSON-decodes exactly
  the pages our extraction reads (the same endpoints, per school where we read per school,
  ``limit=1000``), one request at a time, and keeps nothing;
- **ours**: :func:`passport_pipeline.extract.extract_source` into a fresh DuckDB warehouse file
  (paging, retries, normalization, landing tables and bookkeeping included).

Reported: records/s of each, the ratio of throughputs over the same pages (baseline time / our
time; target >= 0.8, issue 8), and each child's peak RSS (VmHWM)
(target: ours at 1M within 1.5x of ours at 100k). The baseline runs before and after ours and
the mean is used, to even out a shared machine's noise.

Usage: ``python -m benchmarks.extraction --sizes 100000 1000000 [--root DIR]``.
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

BASELINE = r"""
import json, sys, time, requests
base, = sys.argv[1:]
http = requests.Session()
token = http.post(base + "/oauth/token", auth=("passport-demo", "passport-demo-secret"),
                  data={"grant_type": "client_credentials"}).json()["access_token"]
http.headers["Authorization"] = "Bearer " + token
root = base + "/ims/oneroster/v1p1"
def walk(path):
    n, offset = 0, 0
    while True:
        page = http.get(f"{root}/{path}", params={"limit": 1000, "offset": offset, "sort": "sourcedId"})
        (rows,) = page.json().values()
        n += len(rows); offset += len(rows)
        if not rows or offset >= int(page.headers["X-Total-Count"]):
            return n
started = time.perf_counter()
schools, offset = [], 0
while True:
    page = http.get(f"{root}/schools", params={"limit": 1000, "offset": offset}).json()["orgs"]
    schools += [o["sourcedId"] for o in page]
    offset += len(page)
    if len(page) < 1000:
        break
records = walk("orgs") + walk("terms") + walk("users") + walk("demographics")
for collection in ("courses", "classes", "students", "enrollments"):
    for school in schools:
        records += walk(f"schools/{school}/{collection}")
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"records": records, "seconds": time.perf_counter() - started,
                  "peak_rss_mb": round(int(hwm.split()[1]) / 1024)}))
"""

OURS = r"""
import json, sys, time
from passport_pipeline.config import OneRosterSource
from passport_pipeline.extract import extract_source
from passport_pipeline.warehouse.connection import Warehouse
base, warehouse_path = sys.argv[1:]
source = OneRosterSource(name="bench", base_url=base, token_url=base + "/oauth/token",
                         credentials={"client_id_env": "BENCH_ID", "client_secret_env": "BENCH_SECRET"})
env = {"BENCH_ID": "passport-demo", "BENCH_SECRET": "passport-demo-secret"}
with Warehouse(warehouse_path) as warehouse:
    started = time.perf_counter()
    result = extract_source(warehouse, source, run_id="bench", env=env)
    seconds = time.perf_counter() - started
records = sum(o.rows for o in result.entities.values())
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(json.dumps({"records": records, "seconds": seconds, "failed": result.failed,
                  "peak_rss_mb": round(int(hwm.split()[1]) / 1024)}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--root", type=Path, default=None, help="where districts are generated (kept)")
    parser.add_argument("--baseline-runs", type=int, choices=[1, 2], default=2,
                        help="2: baseline before and after ours, averaged (default); 1: before only")
    args = parser.parse_args()
    root = args.root or BENCH_ROOT
    rows = [measure(students, root, args.baseline_runs) for students in args.sizes]
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"extraction-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(rows, indent=2))
    print()
    print(markdown(rows))
    print(f"\n(results saved to {out.relative_to(ROOT)})")
    return 0


def measure(students: int, root: Path, baseline_runs: int = 2) -> dict:
    """Baseline, ours, baseline again against one simulator process serving ``students``."""
    from passport_pipeline.simulator.district import DirtyData, ensure_district

    district = ensure_district(SEED, students, DirtyData(), root=root)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "passport_pipeline.cli", "simulate", "--store", str(district),
         "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    work = Path(tempfile.mkdtemp(prefix="passport-extract-bench-"))
    try:
        _wait_for(f"{base}/admin/state", server, timeout=600)
        first = child_result([sys.executable, "-c", BASELINE, base])
        ours = child_result([sys.executable, "-c", OURS, base, str(work / "warehouse.duckdb")])
        second = child_result([sys.executable, "-c", BASELINE, base]) if baseline_runs == 2 else first
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    baseline_seconds = (first["seconds"] + second["seconds"]) / 2
    row = {
        "students": students,
        "records": ours["records"],
        "baseline_records": first["records"],
        "ours_seconds": round(ours["seconds"], 1),
        "baseline_seconds": round(baseline_seconds, 1),
        "ours_records_per_second": round(ours["records"] / ours["seconds"]),
        "baseline_records_per_second": round(first["records"] / baseline_seconds),
        "ours_peak_rss_mb": ours["peak_rss_mb"],
        "baseline_peak_rss_mb": first["peak_rss_mb"],
        "failed": ours["failed"],
    }
    # The same pages, so the ratio of times is the ratio of throughputs.
    row["ratio"] = round(baseline_seconds / ours["seconds"], 2)
    print(f"extraction at {students:,} students: {row}", flush=True)
    return row


def markdown(rows: list[dict]) -> str:
    lines = ["| district | records | ours | minimal client | ratio | our peak RSS |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['students']:,} students | {r['records']:,} | {r['ours_records_per_second']:,} rec/s "
                     f"({r['ours_seconds']:,} s) | {r['baseline_records_per_second']:,} rec/s | "
                     f"**{r['ratio']}** | {r['ours_peak_rss_mb']} MB |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
