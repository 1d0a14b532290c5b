"""The ``passport-pipeline`` command: run the simulated Skyward district and the demo."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
import traceback
from pathlib import Path

from passport_pipeline.config import ConfigError
from passport_pipeline.redaction import scrubbed_stdio

DEMO_SEED = 7
DEMO_STUDENTS = 5000


@scrubbed_stdio()
def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script: a failure is one line on stderr (the cause and the fix),
    its traceback only with ``--debug``; Ctrl-C and SIGTERM stop a command promptly (exit 130)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _stop) if main_thread else None
    try:
        return args.run(args) or 0
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Stopped (Ctrl-C or SIGTERM).", file=sys.stderr)
        return 130
    except Exception as error:
        from passport_pipeline.failures import explain

        if args.debug:
            traceback.print_exc()
        line = explain(error)
        print(line or f"Unexpected error: {type(error).__name__}: {error}. Run again with --debug for the "
              "traceback.", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _stop(signum, frame) -> None:
    """SIGTERM stops a command the way Ctrl-C does: its ``finally`` blocks run (the simulator stops,
    the warehouse is let go)."""
    raise KeyboardInterrupt


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="passport-pipeline",
        description="Roster sync from Skyward into DuckDB, with an embedded Skyward simulator.",
    )
    parser.set_defaults(debug=False)
    commands = parser.add_subparsers(title="commands")

    simulate = commands.add_parser(
        "simulate",
        help="serve a generated district over the Skyward and OneRoster APIs",
        description="Generate (or reuse) a synthetic district and serve it as Skyward would: "
        "OneRoster 1.1/1.2, the SMS 2.0 native API, OAuth tokens, faults and admin endpoints.",
    )
    _district_options(simulate)
    simulate.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    simulate.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 = any free port)")
    simulate.add_argument(
        "--store",
        type=Path,
        help="serve and mutate this store file instead of a fresh copy of the generated district",
    )
    simulate.add_argument("--client-id", default=None, help="credential id (default passport-demo)")
    simulate.add_argument(
        "--client-secret", default=None, help="credential secret (default passport-demo-secret)"
    )
    simulate.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="switch on a fault at start, e.g. --fault rate_limit_share=0.1 --fault clamp_limit=500 "
        "(values are JSON; see README 'Faults')",
    )
    simulate.set_defaults(run=_simulate)

    generate = commands.add_parser(
        "generate",
        help="generate a synthetic district store and report its size",
        description="Generate a district into data/simulator/ (cached by seed, size and dirt).",
    )
    _district_options(generate)
    generate.set_defaults(run=_generate)

    demo = commands.add_parser(
        "demo",
        help="sync the embedded demo district into the warehouse and print what happened",
        description=f"Sync the configured sources — by default the embedded {DEMO_STUDENTS:,}-student "
        "simulated district, served on a free loopback port, and another system's CSV bundle of it — "
        "into the warehouse through Dagster, then print the sync report.",
    )
    _wait_option(demo)
    demo.set_defaults(run=_demo)

    sync = commands.add_parser(
        "sync",
        help="Run Sync: extract every configured source into the warehouse, through Dagster",
        description="Run the Dagster 'sync' job in this process over the sources in passport.yaml "
        "(PASSPORT_CONFIG) and print what happened. Exit status: 0 succeeded; 3 every step ran but some "
        "scope could not be extracted completely (listed; it kept its previous data); 1 a step failed "
        "(why, in one line); 2 the configuration is wrong; 130 stopped (Ctrl-C or SIGTERM).",
    )
    sync.add_argument("--mode", choices=["full", "delta"], default="full",
                      help="full: a complete snapshot per school (default); delta: only what changed")
    _wait_option(sync)
    sync.set_defaults(run=_sync)

    check = commands.add_parser(
        "test-connection",
        help="check that each configured source can be synced, and say what to fix",
        description="Authenticate to each source and read one page of each entity endpoint. "
        "Exits non-zero when a source is unusable.",
    )
    check.add_argument("--source", action="append", metavar="NAME", help="only this source (repeatable)")
    check.set_defaults(run=_test_connection)
    for command in commands.choices.values():
        command.add_argument("--debug", action="store_true",
                             help="on failure, show the traceback (and Dagster's log) besides the one-line message")
    return parser


def _wait_option(parser: argparse.ArgumentParser) -> None:
    from passport_pipeline.warehouse.lock import WAIT_SECONDS

    parser.add_argument("--wait", type=float, default=WAIT_SECONDS, metavar="SECONDS",
                        help="when another sync is writing the warehouse, wait this long for it to finish "
                        f"before giving up (default {WAIT_SECONDS:.0f})")


def _district_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=DEMO_SEED, help=f"generator seed (default {DEMO_SEED})")
    parser.add_argument(
        "--students", type=int, default=DEMO_STUDENTS, help=f"district size (default {DEMO_STUDENTS})"
    )
    parser.add_argument(
        "--dirty",
        choices=["demo", "none"],
        default="demo",
        help="dirty-data knobs: 'demo' (a little of every kind, default) or 'none'",
    )


def _dirty(name: str):
    from passport_pipeline.simulator.district import DirtyData

    return DirtyData.demo() if name == "demo" else DirtyData()


def _parse_faults(pairs: list[str]) -> dict:
    faults = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"--fault expects NAME=VALUE, got {pair!r}")
        try:
            faults[name] = json.loads(value)
        except json.JSONDecodeError:
            faults[name] = value
    return faults


def _generate(args: argparse.Namespace) -> int:
    from passport_pipeline.simulator import store
    from passport_pipeline.simulator.district import ensure_district

    started = time.perf_counter()
    path = ensure_district(args.seed, args.students, _dirty(args.dirty))
    elapsed = time.perf_counter() - started
    con = store.connect(path, read_only=True)
    try:
        counts = store.counts(con)
    finally:
        con.close()
    print(f"district: {path}  ({path.stat().st_size / 1e6:,.1f} MB, ready in {elapsed:,.1f} s)")
    for name, n in counts.items():
        print(f"  {name:<24} {n:>12,}")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from passport_pipeline.simulator.district import ensure_district, working_copy
    from passport_pipeline.simulator.faults import Faults
    from passport_pipeline.simulator.server import SimulatorSettings, serve

    try:
        faults = Faults(**_parse_faults(args.fault))
    except ValidationError as error:
        print(f"invalid --fault: {error}", file=sys.stderr)
        return 2
    store_path = args.store
    if store_path is None:
        pristine = ensure_district(args.seed, args.students, _dirty(args.dirty))
        store_path = working_copy(pristine, pristine.with_name(f"serving-{pristine.name}"))
    settings = SimulatorSettings(host=args.host, port=args.port, store_path=store_path, faults=faults)
    if args.client_id or args.client_secret:
        from passport_pipeline.simulator.auth import Credential

        default = settings.credentials[0]
        settings.credentials = [
            Credential(
                client_id=args.client_id or default.client_id,
                secret=args.client_secret or default.secret,
            )
        ]
    serve(settings)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from passport_pipeline.demo import run_demo

    return run_demo(wait_seconds=args.wait, debug=args.debug)


def _sync(args: argparse.Namespace) -> int:
    from passport_pipeline.sync import run_sync, tell

    outcome = run_sync(mode=args.mode, debug=args.debug, wait_seconds=args.wait, waiting=_say)
    return tell(outcome, debug=args.debug)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _test_connection(args: argparse.Namespace) -> int:
    from passport_pipeline.config import load_config
    from passport_pipeline.connection_check import check_sources, format_report
    from passport_pipeline.simulator.embedded import reachable

    with reachable(load_config()) as config:
        reports = check_sources(config, names=args.source)
    print(format_report(reports))
    return 0 if all(report.usable for report in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
