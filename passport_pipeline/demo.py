"""``make demo``: sync the embedded 5,000-student demo district into DuckDB and say what happened.

The shipped ``passport.yaml`` points at the embedded simulator, so this is a real sync: the
simulated Skyward starts on a free loopback port, the Dagster ``sync`` job reads it over
OneRoster with OAuth into the warehouse, and the simulator stops again.
"""

from __future__ import annotations

from passport_pipeline.config import load_config
from passport_pipeline.sync import EXIT_CODES, run_sync


def run_demo() -> int:
    """Run one full sync of the configured (by default, embedded) district; print the report."""
    config = load_config()
    district = config.simulator
    if district is not None:
        print(f"Syncing the embedded demo district ({district.students:,} students, seed {district.seed}) "
              f"through the Dagster 'sync' job...")
    outcome = run_sync(mode="full")
    state = outcome.status if outcome.success else outcome.status.upper()
    print(f"Run {outcome.run_id} {state} in {outcome.seconds:,.1f} s.\n")
    print(outcome.report)
    print("\nExplore it: `make dev` for the Dagster UI, or duckdb on the warehouse file (raw.* tables).")
    return EXIT_CODES[outcome.status]
