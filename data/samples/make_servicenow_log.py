"""Make the shipped ServiceNow-shaped incident log (``data/samples/servicenow_incidents.csv.gz``).

One row per update of an incident with the state after it, in the layout of ServiceNow's
incident event log export (``number``, ``incident_state``, ``sys_updated_at``,
``sys_mod_count``, ``assignment_group``, ``assigned_to``, ``priority``, ``made_sla``,
``reassignment_count``, ``reopen_count``, ``opened_at``, ``resolved_at``, ``closed_at``, ...),
dates as ``29-02-2016 01:16`` and missing values as ``?``. Every parameter is known:

- ``N_INCIDENTS`` incidents opened over ``DAYS`` days from ``START``, weekdays five times as
  busy as weekend days and working hours (09-17 UTC) four times as busy as the night;
- priorities with the shares of ``PRIORITIES``; each category goes first to its group
  (``FIRST_GROUP``), ``P_REASSIGN`` of incidents move to another group and ``P_PING_PONG`` of
  those come back (A -> B -> A);
- New for an exponential triage (mean ``TRIAGE_MEAN_H``), then work in Active, lognormal with
  the median of ``WORK_MEDIAN_H`` per priority (sigma ``WORK_SIGMA``), split over the groups;
- ``P_WAIT`` of incidents wait once (Awaiting User Info or Awaiting Vendor, exponential with
  mean ``WAIT_MEAN_H``) in the middle of their work;
- ``P_REOPEN`` of incidents are reopened ``REOPEN_AFTER_H`` (mean, exponential) after their
  resolution and need ``REOPEN_WORK_H`` more (mean, exponential);
- resolved incidents close ``CLOSE_AFTER_DAYS`` later; what happens after ``END`` is not in the
  export (incidents still open, or resolved and not yet closed);
- ``made_sla``: whether the time from opening to the last resolution, less the waits and the
  time resolved before a reopen, is within ``SLA_HOURS`` of its priority (wall clock, on
  the minutes the export shows), with ``P_FLAG_NOISE`` of the flags flipped (a tool's own SLA
  definitions never quite match another's);
- ``P_NOTE``: an extra update in the same state (a work note), which the import merges.

Run ``python data/samples/make_servicenow_log.py`` to rewrite the file.
"""

from __future__ import annotations

import gzip
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

RANDOM_SEED = 20160229
N_INCIDENTS = 600
DAYS = 28
START = datetime(2016, 2, 29, tzinfo=UTC)  # a Monday
END = START + timedelta(days=DAYS)
OUT = Path(__file__).with_name("servicenow_incidents.csv.gz")

PRIORITIES = {"1 - Critical": 0.05, "2 - High": 0.15, "3 - Moderate": 0.5, "4 - Low": 0.3}
IMPACT_URGENCY = {
    "1 - Critical": ("1 - High", "1 - High"),
    "2 - High": ("1 - High", "2 - Medium"),
    "3 - Moderate": ("2 - Medium", "2 - Medium"),
    "4 - Low": ("3 - Low", "3 - Low"),
}
WORK_MEDIAN_H = {"1 - Critical": 1.5, "2 - High": 3.0, "3 - Moderate": 8.0, "4 - Low": 20.0}
WORK_SIGMA = 0.8
SLA_HOURS = {"1 - Critical": 4.0, "2 - High": 8.0, "3 - Moderate": 24.0, "4 - Low": 72.0}
CATEGORIES = {"Network": 0.2, "Database": 0.15, "Software": 0.35, "Hardware": 0.15, "Access": 0.15}
FIRST_GROUP = {
    "Network": "Network",
    "Database": "Database",
    "Software": "Applications",
    "Hardware": "Service Desk",
    "Access": "Service Desk",
}
GROUPS = ("Service Desk", "Network", "Database", "Applications")
RESOLVERS_PER_GROUP = 5
CHANNELS = {"Phone": 0.4, "Email": 0.3, "Self service": 0.3}
TRIAGE_MEAN_H = 0.5
P_REASSIGN = 0.3
P_PING_PONG = 0.25
P_WAIT = 0.35
WAITS = {"Awaiting User Info": 0.7, "Awaiting Vendor": 0.3}
WAIT_MEAN_H = 8.0
P_REOPEN = 0.08
REOPEN_AFTER_H = 12.0
REOPEN_WORK_H = 2.0
CLOSE_AFTER_DAYS = 3
P_FLAG_NOISE = 0.03
P_NOTE = 0.3

COLUMNS = (
    "number",
    "incident_state",
    "active",
    "reassignment_count",
    "reopen_count",
    "sys_mod_count",
    "made_sla",
    "caller_id",
    "opened_at",
    "sys_updated_at",
    "contact_type",
    "category",
    "impact",
    "urgency",
    "priority",
    "assignment_group",
    "assigned_to",
    "closed_code",
    "resolved_at",
    "closed_at",
)


def _choice(rng: np.random.Generator, shares: dict[str, float]) -> str:
    names = list(shares)
    return str(rng.choice(names, p=np.asarray(list(shares.values())) / sum(shares.values())))


def _opening(rng: np.random.Generator) -> datetime:
    while True:
        day = int(rng.integers(DAYS))
        hour = int(rng.integers(24))
        weight = (1.0 if (START + timedelta(days=day)).weekday() < 5 else 0.2) * (
            1.0 if 9 <= hour < 17 else 0.25
        )
        if rng.random() < weight:
            minute = int(rng.integers(60))
            return START + timedelta(days=day, hours=hour, minutes=minute)


def _minute(t: datetime) -> datetime:
    return t.replace(second=0, microsecond=0)


def _resolver(rng: np.random.Generator, group: str) -> str:
    return f"Resolver {GROUPS.index(group) * 10 + int(rng.integers(RESOLVERS_PER_GROUP)) + 1}"


def _incident(rng: np.random.Generator, number: int) -> list[dict[str, object]]:
    """The updates of one incident, in order: (state, time, group, resolver) and the case's
    fields, before the export's cut at ``END``."""
    priority = _choice(rng, PRIORITIES)
    category = _choice(rng, CATEGORIES)
    first = FIRST_GROUP[category]
    opened = _minute(_opening(rng))
    work = rng.lognormal(np.log(WORK_MEDIAN_H[priority]), WORK_SIGMA)
    groups = [first]
    if rng.random() < P_REASSIGN:
        groups.append(str(rng.choice([g for g in GROUPS if g != first])))
        if rng.random() < P_PING_PONG:
            groups.append(first)
    waits = rng.random() < P_WAIT
    shares = rng.dirichlet(np.ones(len(groups) + (1 if waits else 0)))
    resolvers = {g: _resolver(rng, g) for g in dict.fromkeys(groups)}  # in order: one seed, one log
    # (state, hours in it, group, resolver)
    path: list[tuple[str, float, str, str | None]] = [
        ("New", rng.exponential(TRIAGE_MEAN_H), first, None)
    ]
    for i, group in enumerate(groups):
        path.append(("Active", work * shares[i], group, resolvers[group]))
        if waits and i == 0:
            wait = rng.exponential(WAIT_MEAN_H)
            path.append((_choice(rng, WAITS), wait, group, resolvers[group]))
            path.append(("Active", work * shares[-1], group, resolvers[group]))
    last = groups[-1]
    reopened = rng.random() < P_REOPEN
    if reopened:
        path.append(("Resolved", rng.exponential(REOPEN_AFTER_H), last, resolvers[last]))
        path.append(("Active", rng.exponential(REOPEN_WORK_H), last, resolvers[last]))
    path.append(("Resolved", CLOSE_AFTER_DAYS * 24.0, last, resolvers[last]))
    path.append(("Closed", 0.0, last, resolvers[last]))

    updates: list[tuple[str, datetime, str, str | None]] = []
    t = opened
    for state, hours, group, resolver in path:
        updates.append((state, t, group, resolver))
        if state == "Active" and rng.random() < P_NOTE:
            updates.append(
                (state, _minute(t + timedelta(hours=hours * rng.random())), group, resolver)
            )
        t = _minute(t + timedelta(hours=hours))
    # the SLA truth on the minutes the export shows
    resolved_at = [u[1] for u in updates if u[0] == "Resolved"][-1]
    stood = sum(
        (
            (updates[i + 1][1] - u[1]).total_seconds()
            for i, u in enumerate(updates[:-1])
            if u[0] in WAITS or (u[0] == "Resolved" and u[1] < resolved_at)
        ),
        0.0,
    )
    measured = (resolved_at - opened).total_seconds() - stood
    made_sla = measured <= SLA_HOURS[priority] * 3600
    if rng.random() < P_FLAG_NOISE:
        made_sla = not made_sla
    closed_at = updates[-1][1]
    channel = _choice(rng, CHANNELS)
    impact, urgency = IMPACT_URGENCY[priority]
    caller = f"Caller {int(rng.integers(1, 3000))}"
    rows: list[dict[str, object]] = []
    reassignments = reopens = 0
    for mod, (state, at, group, resolver) in enumerate(updates):
        if at > END:
            break
        if rows and group != rows[-1]["assignment_group"]:
            reassignments += 1
        if rows and state == "Active" and rows[-1]["incident_state"] == "Resolved":
            reopens += 1
        done = state in ("Resolved", "Closed") and at >= resolved_at
        rows.append(
            {
                "number": f"INC{number:07d}",
                "incident_state": state,
                "active": "false" if state == "Closed" else "true",
                "reassignment_count": str(reassignments),
                "reopen_count": str(reopens),
                "sys_mod_count": str(mod),
                "made_sla": "true" if made_sla else "false",
                "caller_id": caller,
                "opened_at": opened.strftime("%d-%m-%Y %H:%M"),
                "sys_updated_at": at.strftime("%d-%m-%Y %H:%M"),
                "contact_type": channel,
                "category": category,
                "impact": impact,
                "urgency": urgency,
                "priority": priority,
                "assignment_group": group,
                "assigned_to": resolver or "?",
                "closed_code": "Solved (Permanently)" if done else "?",
                "resolved_at": resolved_at.strftime("%d-%m-%Y %H:%M") if done else "?",
                "closed_at": closed_at.strftime("%d-%m-%Y %H:%M") if closed_at <= END else "?",
            }
        )
    return rows


def generate(n: int = N_INCIDENTS, *, seed: int = RANDOM_SEED) -> pl.DataFrame:
    """The log of ``n`` incidents, every column text as in the export."""
    rng = np.random.default_rng(seed)
    rows = [row for k in range(n) for row in _incident(rng, 10_000 + k)]
    return pl.DataFrame(rows, schema=dict.fromkeys(COLUMNS, pl.String), orient="row")


def main(argv: list[str]) -> None:
    """Write the log to ``OUT`` (or the path given)."""
    out = Path(argv[1]) if len(argv) > 1 else OUT
    log = generate()
    out.write_bytes(gzip.compress(log.write_csv().encode(), mtime=0))
    print(f"{out}: {log.height} rows, {log['number'].n_unique()} incidents")


if __name__ == "__main__":
    main(sys.argv)
