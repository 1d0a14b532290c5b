"""Dagster wiring only: assets per stage, asset checks, jobs, schedules, sensors and resources.

The logic these definitions run lives in plain modules (``sources``, ``rules``, ``warehouse``);
nothing here may touch the network or the warehouse at import time.
"""
