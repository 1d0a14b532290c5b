"""The district's calendar and simulated clock.

Calendars are district-wide, as in most Skyward districts: a school year from late August to
early June, a fall and a spring semester, and four quarters (grading periods). The simulated
clock reads just after the nightly SIS batch, so everything changed "today" is stamped with the
same ``now``.
"""

from __future__ import annotations

from datetime import date, datetime, time

import numpy as np
import pandas as pd

NIGHTLY_RUN = time(6, 0)
DISTRICT_NO = 1
"""Number of the district org: sessions belong to it."""


def school_year_of(today: date) -> int:
    """The ending year of the school year ``today`` falls in (2027 for 2026-2027)."""
    return today.year + 1 if today.month >= 7 else today.year


def simulated_now(today: date) -> datetime:
    """The simulated clock's time on ``today``."""
    return datetime.combine(today, NIGHTLY_RUN)


def school_year_sessions(end_year: int, first_no: int, dlm: datetime | np.ndarray) -> pd.DataFrame:
    """The sessions of a school year, numbered from ``first_no``: the year, fall, spring, Q1-Q4.

    Rows are shaped for ``rows.INSERTS["academic_sessions"]``.
    """
    y0, y1 = end_year - 1, end_year
    rows = [
        (f"{y0}-{y1}", "schoolYear", date(y0, 8, 24), date(y1, 6, 4), None),
        (f"Fall {y0}", "semester", date(y0, 8, 24), date(y1, 1, 15), 0),
        (f"Spring {y1}", "semester", date(y1, 1, 19), date(y1, 6, 4), 0),
        (f"Q1 {y0}-{y1}", "gradingPeriod", date(y0, 8, 24), date(y0, 10, 23), 1),
        (f"Q2 {y0}-{y1}", "gradingPeriod", date(y0, 10, 26), date(y1, 1, 15), 1),
        (f"Q3 {y0}-{y1}", "gradingPeriod", date(y1, 1, 19), date(y1, 3, 26), 2),
        (f"Q4 {y0}-{y1}", "gradingPeriod", date(y1, 3, 29), date(y1, 6, 4), 2),
    ]
    return pd.DataFrame({
        "no": first_no + np.arange(len(rows)), "dlm": dlm,
        "title": [r[0] for r in rows], "type": [r[1] for r in rows],
        "start_date": [r[2] for r in rows], "end_date": [r[3] for r in rows],
        "parent_no": pd.array([None if r[4] is None else first_no + r[4] for r in rows],
                              dtype="Int64"),
        "school_year": end_year, "org_no": DISTRICT_NO,
    })
