"""``make bench``: the simulator's scale numbers recorded in the README.

- generation: wall time, on-disk size and peak RSS of generating a district, each size in a
  fresh process so peak RSS is that generation's own;
- serving: records/s paging ``/ims/oneroster/v1p1/enrollments`` at ``limit=1000`` with one
  plain ``requests`` session, the server in its own process, and the cost of a page at the last
  offset relative to a page at offset 0 (1.0 means offset does not matter).

Usage: ``python -m benchmarks.run [--sizes 100000 1000000] [--serve-size 100000]``; districts
stay in ``data/bench/`` for :mod:`benchmarks.extraction`.
Results are printed as a markdown table and written to ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
BENCH_ROOT = ROOT / "data" / "bench"
SEED = 7


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000],
                        help="district sizes (students) to generate")
    parser.add_argument("--serve-size", type=int, default=100_000,
                        help="district size to measure serving throughput on")
    parser.add_argument("--root", type=Path, default=BENCH_ROOT,
                        help="where generated districts go (kept for benchmarks.extraction)")
    args = parser.parse_args()

    results = {"machine": _machine(), "generation": [], "serving": None}
    for students in args.sizes:
        row = measure_generation(students, args.root)
        results["generation"].append(row)
        print(f"generated {students:,} students: {row}", flush=True)
    serve_store = next(
        (Path(r["path"]) for r in results["generation"] if r["students"] == args.serve_size),
        None,
    ) or Path(measure_generation(args.serve_size, args.root)["path"])
    results["serving"] = {"students": args.serve_size, **measure_serving(serve_store)}
    print(f"serving: {results['serving']}", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"simulator-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2))
    print()
    print(markdown(results))
    print(f"\n(results saved to {out.relative_to(ROOT)})")
    return 0


def measure_generation(students: int, root: Path) -> dict:
    """Generate one district afresh in a child process; report seconds, MB on disk and peak RSS."""
    from passport_pipeline.simulator.district import DirtyData, district_file_name

    (root / district_file_name(SEED, students, DirtyData())).unlink(missing_ok=True)
    code = (
        "import json,sys,time;from pathlib import Path;"
        "from passport_pipeline.simulator.district import ensure_district, DirtyData;"
        "t=time.perf_counter();"
        f"p=ensure_district({SEED},{students},DirtyData(),root=Path({str(root)!r}));"
        "hwm=next(l for l in open('/proc/self/status') if l.startswith('VmHWM'));"
        "print(json.dumps({'path':str(p),'seconds':time.perf_counter()-t,'peak_kb':int(hwm.split()[1])}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    row = json.loads(done.stdout.strip().splitlines()[-1])
    path = Path(row["path"])
    return {
        "students": students,
        "seconds": round(row["seconds"], 1),
        "disk_mb": round(path.stat().st_size / 1e6, 1),
        "peak_rss_mb": round(row["peak_kb"] / 1024),
        "path": str(path),
    }


def measure_serving(store_path: Path, limit: int = 1000, seconds: float = 20.0) -> dict:
    """Page enrollments from a simulator in its own process; records/s and offset cost ratio."""
    port = _free_port()
    served = store_path.with_name(f"bench-serving-{store_path.name}")
    shutil.copyfile(store_path, served)
    server = subprocess.Popen(
        [sys.executable, "-m", "passport_pipeline.cli", "simulate", "--store", str(served),
         "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{base}/admin/state", server)
        http = requests.Session()
        token = http.post(f"{base}/oauth/token", auth=("passport-demo", "passport-demo-secret"),
                          data={"grant_type": "client_credentials"}, timeout=30).json()
        http.headers["Authorization"] = f"Bearer {token['access_token']}"
        url = f"{base}/ims/oneroster/v1p1/enrollments"

        first = http.get(url, params={"limit": limit}, timeout=60)
        total = int(first.headers["X-Total-Count"])
        records, pages, began, offset = 0, 0, time.perf_counter(), 0
        while time.perf_counter() - began < seconds and offset < total:
            page = http.get(url, params={"limit": limit, "offset": offset}, timeout=60)
            records += len(page.json()["enrollments"])
            pages += 1
            offset += limit
        elapsed = time.perf_counter() - began

        def page_seconds(at: int, repeat: int = 20) -> float:
            t = time.perf_counter()
            for _ in range(repeat):
                http.get(url, params={"limit": limit, "offset": at}, timeout=60).content
            return (time.perf_counter() - t) / repeat

        low, high = page_seconds(0), page_seconds(max(total - limit, 0))
        return {
            "enrollments_total": total,
            "records_per_second": round(records / elapsed),
            "pages": pages,
            "page_ms_offset_0": round(low * 1000, 2),
            "page_ms_last_offset": round(high * 1000, 2),
            "last_over_first_ratio": round(high / low, 2),
        }
    finally:
        server.terminate()
        server.wait(timeout=30)
        served.unlink(missing_ok=True)


def markdown(results: dict) -> str:
    """The README's performance table."""
    lines = ["| district | generation time | on-disk size | generator peak RSS |", "|---|---|---|---|"]
    for row in results["generation"]:
        rss = f"{row['peak_rss_mb']:,.0f} MB"
        lines.append(f"| {row['students']:,} students | {row['seconds']:,.1f} s | "
                     f"{row['disk_mb']:,.0f} MB | {rss} |")
    serving = results["serving"]
    if serving:
        lines += [
            "",
            f"Serving `/ims/oneroster/v1p1/enrollments?limit=1000` ({serving['students']:,}-student "
            f"district, {serving['enrollments_total']:,} enrollments): **{serving['records_per_second']:,} records/s**; a page at the last offset "
            f"costs {serving['last_over_first_ratio']}× a page at offset 0 "
            f"({serving['page_ms_last_offset']} ms vs {serving['page_ms_offset_0']} ms).",
        ]
    return "\n".join(lines)


def _machine() -> dict:
    return {"cpus": os.cpu_count(), "python": sys.version.split()[0], "date": time.strftime("%Y-%m-%d")}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"simulator exited early: {process.stderr.read()}")
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"simulator did not answer {url} within {timeout} s")


def child_result(command: list[str]) -> dict:
    """Run a benchmark child to completion; the JSON it printed last (with its own peak RSS)."""
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise RuntimeError(f"benchmark child failed: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    sys.exit(main())
