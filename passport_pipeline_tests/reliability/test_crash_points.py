"""kill -9 at every named crash point, then a rerun that must converge to the reference.

The points are the ``crash_point("<name>")`` calls in the package (:mod:`passport_pipeline.crash`),
found here by reading its source: a stage that lands joins this suite by adding its calls, and
each one is tried. For each, a real ``passport-pipeline sync`` process starts from a copy of the
reference warehouse (a previous picture to keep), kills itself at the point, and the next sync
must exit 0 with every raw and staging table exactly the reference, no pull left ``running`` and
the dead Dagster run marked failed.

``make test`` keeps one fast variant: extraction and the rule stages, without Dagster, killed
between a read's commit and its pulls' end on a new warehouse, then a sync.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pytest
from reference_sync import ENV, assert_same_picture, picture, pulls, sync, write_config

from passport_pipeline.crash import CRASH_AT

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "passport_pipeline"
API = "oneroster-1.1"


def crash_points() -> list[str]:
    """Every point named in the package's code."""
    calls = re.compile(r"""\bcrash_point\(["']([^"']+)["']\)""")
    return sorted({name for path in PACKAGE.rglob("*.py") for name in calls.findall(path.read_text())})


STAGES_TODAY = {
    "extract.mid_read", "extract.read_committed", "extract.sweep",
    *(f"{stage}.{when}" for stage in ("schools_mapping", "mapped", "filtered", "staged")
      for when in ("in_transaction", "committed")),
    "sync_report",
}
"""The points of the stages that exist today; later stages (merge, diff, publish, export) add theirs."""


def test_every_stage_of_today_names_its_crash_points():
    assert STAGES_TODAY <= set(crash_points())


def killed_env(folder: Path, config: Path, point: str) -> dict:
    """The environment of a sync process that dies at ``point``, with its own Dagster home."""
    home = folder / "dagster-home"
    home.mkdir(exist_ok=True)
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    return {**os.environ, **ENV, "PASSPORT_CONFIG": str(config), "DAGSTER_HOME": str(home), CRASH_AT: point}


@pytest.mark.reliability
@pytest.mark.parametrize("point", crash_points())
def test_a_sync_killed_at_a_crash_point_converges_on_the_next_sync(point, sim, reference, tmp_path):
    before = reference(API)
    config = write_config(tmp_path, API, sim.base_url)
    warehouse = before.copy_to(tmp_path)
    env = killed_env(tmp_path, config, point)

    killed = subprocess.run([sys.executable, "-m", "passport_pipeline.cli", "sync"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, f"the sync never reached {point}: {killed.stdout}{killed.stderr}"

    home = Path(env["DAGSTER_HOME"])
    done = sync(config, dagster_home=home)
    assert done.code == 0, done.err
    assert {status for _, _, status, _ in pulls(warehouse, done.run_id)} == {"complete"}
    assert "running" not in {status for _, _, status, _ in pulls(warehouse)}
    assert_same_picture(picture(warehouse), before.picture)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(home))
        with dg.DagsterInstance.get() as instance:
            statuses = sorted(run.status.value for run in instance.get_runs())
    assert statuses == ["FAILURE", "SUCCESS"], "the killed run is marked failed, the rerun succeeded"


KILLED_WITHOUT_DAGSTER = textwrap.dedent("""
    import datetime as dt
    from passport_pipeline.config import load_config
    from passport_pipeline.extract import extract_source
    from passport_pipeline.rules.chain import transform_source
    from passport_pipeline.warehouse.connection import Warehouse

    config = load_config()
    (source,) = config.sources
    with Warehouse(config.warehouse) as warehouse:
        extract_source(warehouse, source, run_id="killed")
        transform_source(warehouse, source, "killed", dt.date.today())
""")


def test_extraction_killed_with_rows_committed_but_pulls_not_ended_converges_on_the_next_sync(
        sim, reference, tmp_path):
    before = reference(API)
    config = write_config(tmp_path, API, sim.base_url)
    env = killed_env(tmp_path, config, "extract.read_committed")

    killed = subprocess.run([sys.executable, "-c", KILLED_WITHOUT_DAGSTER], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    warehouse = tmp_path / "warehouse.duckdb"
    assert "running" in {status for _, _, status, _ in pulls(warehouse, "killed")}

    done = sync(config)
    assert done.code == 0, done.err
    assert {status for _, _, status, _ in pulls(warehouse, "killed")} <= {"complete", "abandoned"}
    assert "abandoned" in {status for _, _, status, _ in pulls(warehouse, "killed")}
    assert_same_picture(picture(warehouse), before.picture)
