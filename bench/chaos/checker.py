"""The checker: pure functions from a chaos run's history to a table of results (no services, no Django).

Inputs are plain rows (:class:`RunRow` from ``testproject_chaosrun``, :class:`JobRow` and :class:`AttemptRow` read
at the end, :class:`FaultEvent` as the runner fired them) and the ids the runner pushed. Definitions (the issue's,
made exact; docs/reliability.md repeats them):

* **lost** — a job pushed in a committed transaction with no run in the history, unless an operator committed it
  ``done``/``failed`` (then it was never meant to run).
* **duplicate** — a run of a job after an earlier run whose attempt did not end in a recorded failure (a job that
  raised is retried: that is not a duplicate). It is **explained** when the earlier run overlapped a fault that
  can interrupt it (a kill of its worker, a killed database connection, a Redis fault, an operator's repush or
  commit of that job) or when django-meepo recorded its attempt as interrupted (lease expired, handed back, time
  limit, stopped by an operator); otherwise **unexplained**.
* **stuck** — a job still ``doing`` whose lease ended before the final check.
* **cid order** — along a job's runs, in the order they started, the cid strictly increases.
* **rolled back ran** — a job pushed in a rolled-back transaction that has a run or a row.
* **unrecorded end** — a committed job whose final status is not ``done`` or ``failed``.
* **done, never finished** — a job ``done`` (not by an operator) without a run that returned.

The run fails on any lost job, unexplained duplicate, stuck job, cid disorder, rolled-back run, unrecorded end or
job done without a finished run.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

# Attempt outcomes by which django-meepo itself says a run was cut short (django_meepo.models.Attempt.Outcome).
INTERRUPTED_OUTCOMES = frozenset({"lease_expired", "released", "time_limit", "superseded"})
FAILED_OUTCOME = "failed"
TERMINAL = frozenset({"done", "failed"})
EXAMPLES = 5


@dataclass(frozen=True, slots=True)
class RunRow:
    job_id: int
    cid: int
    attempt: int
    pid: int
    started: datetime
    ended: datetime | None
    run_id: str = ""


@dataclass(frozen=True, slots=True)
class JobRow:
    id: int
    status: str
    cid: int
    lease_until: datetime | None


@dataclass(frozen=True, slots=True)
class AttemptRow:
    job_id: int
    number: int
    outcome: str


@dataclass(frozen=True, slots=True)
class FaultEvent:
    """A fault as fired: ``pids``/``job_ids`` narrow whose runs it can interrupt (None: any run);
    ``interrupts`` is False for faults that must not cause a second run (a skewed clock, rolled-back pushes);
    ``reruns`` is True for an operator's repush of ``job_ids``: it asks for a new run of those jobs, so it explains
    a later run whether or not the earlier one was still running (it may have returned, its commit not landed)."""

    name: str
    started: datetime
    ended: datetime
    interrupts: bool = True
    pids: frozenset[int] | None = None
    job_ids: frozenset[int] | None = None
    detail: str = ""
    reruns: bool = False

    def can_interrupt(self, run: RunRow, until: datetime | None = None) -> bool:
        """Could this fault have cut ``run`` short (or, for a repush, asked for the run that began at ``until``)?
        A run that never ended counts as running ``until`` (when the next run of its job started: by then it had
        been given up)."""
        if not self.interrupts:
            return False
        if self.pids is not None and run.pid not in self.pids:
            return False
        if self.job_ids is not None and run.job_id not in self.job_ids:
            return False
        if self.reruns:  # between the earlier run's start and the later run's start
            return run.started <= self.ended and (until is None or self.started <= until)
        end = run.ended or until
        return run.started <= self.ended and (end is None or end >= self.started)


@dataclass(frozen=True, slots=True)
class History:
    runs: Sequence[RunRow]
    jobs: Sequence[JobRow]
    attempts: Sequence[AttemptRow]
    faults: Sequence[FaultEvent]
    committed: frozenset[int]
    rolled_back: frozenset[int]
    operator_committed: frozenset[int] = frozenset()
    now: datetime | None = None  # the database's time at the final check (for stuck)


@dataclass(slots=True)
class Check:
    name: str
    count: int
    fatal: bool  # True: a non-zero count fails the run
    examples: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.fatal and self.count > 0


def runs_by_job(runs: Iterable[RunRow]) -> dict[int, list[RunRow]]:
    grouped: dict[int, list[RunRow]] = defaultdict(list)
    for run in runs:
        grouped[run.job_id].append(run)
    for rows in grouped.values():
        rows.sort(key=lambda r: (r.started, r.cid))
    return grouped


def lost(h: History) -> Check:
    ran = {r.job_id for r in h.runs}
    final = {j.id: j for j in h.jobs}
    ids = sorted(i for i in h.committed if i not in ran
                 and not (i in h.operator_committed and i in final and final[i].status in TERMINAL))
    return Check("lost (committed, never ran)", len(ids), True, [f"job {i}" for i in ids[:EXAMPLES]])


def duplicates(h: History) -> tuple[Check, Check]:
    """The explained and the unexplained duplicates (see the module's definitions)."""
    outcomes = {(a.job_id, a.number): a.outcome for a in h.attempts}
    explained: list[str] = []
    unexplained: list[str] = []
    for job_id, rows in sorted(runs_by_job(h.runs).items()):
        for earlier, later in itertools.pairwise(rows):
            outcome = outcomes.get((job_id, earlier.attempt), "")
            if outcome == FAILED_OUTCOME:
                continue  # a retry after a failure the job raised
            faults = [f for f in h.faults if f.can_interrupt(earlier, later.started)]
            what = (f"job {job_id}: cid {earlier.cid} (pid {earlier.pid}, {_span(earlier)}) then cid {later.cid} "
                    f"(pid {later.pid}, {_span(later)})")
            if faults:
                explained.append(f"{what} [{', '.join(sorted({f.name for f in faults}))}]")
            elif outcome in INTERRUPTED_OUTCOMES:
                explained.append(f"{what} [attempt {outcome}]")
            else:
                unexplained.append(what + (f" [attempt {outcome}]" if outcome else " [no attempt recorded]"))
    return (Check("duplicates, explained", len(explained), False, explained[:EXAMPLES]),
            Check("duplicates, unexplained", len(unexplained), True, unexplained[:EXAMPLES]))


def stuck(h: History) -> Check:
    rows = [j for j in h.jobs if j.status == "doing"
            and (j.lease_until is None or h.now is None or j.lease_until < h.now)]
    return Check("stuck (doing past its lease)", len(rows), True,
                 [f"job {j.id} cid {j.cid} lease until {j.lease_until}" for j in rows[:EXAMPLES]])


def cid_order(h: History) -> Check:
    bad: list[str] = []
    for job_id, rows in sorted(runs_by_job(h.runs).items()):
        cids = [r.cid for r in rows]
        if any(b <= a for a, b in itertools.pairwise(cids)):
            bad.append(f"job {job_id}: cids {cids} in start order")
    return Check("cid not strictly increasing", len(bad), True, bad[:EXAMPLES])


def rolled_back_ran(h: History) -> Check:
    ran = sorted({r.job_id for r in h.runs if r.job_id in h.rolled_back}
                 | {j.id for j in h.jobs if j.id in h.rolled_back})
    return Check("rolled-back pushes that ran or exist", len(ran), True, [f"job {i}" for i in ran[:EXAMPLES]])


def unrecorded_end(h: History) -> Check:
    final = {j.id: j for j in h.jobs}
    bad = sorted(i for i in h.committed if i not in final or final[i].status not in TERMINAL)
    return Check("not ended in a recorded state", len(bad), True,
                 [f"job {i}: {final[i].status if i in final else 'row missing'}" for i in bad[:EXAMPLES]])


def done_unfinished(h: History) -> Check:
    finished = {r.job_id for r in h.runs if r.ended is not None}
    bad = sorted(j.id for j in h.jobs if j.status == "done" and j.id not in finished
                 and j.id not in h.operator_committed)
    return Check("done without a finished run", len(bad), True, [f"job {i}" for i in bad[:EXAMPLES]])


def check(h: History) -> list[Check]:
    """Every check, in the table's order."""
    explained, unexplained = duplicates(h)
    return [lost(h), explained, unexplained, stuck(h), cid_order(h), rolled_back_ran(h), unrecorded_end(h),
            done_unfinished(h)]


def passed(checks: Iterable[Check]) -> bool:
    return not any(c.failed for c in checks)


def table(checks: Sequence[Check]) -> str:
    """The result table: one line per check (count, PASS/FAIL/info), then up to five examples of each."""
    width = max(len(c.name) for c in checks)
    lines = [f"{'check':<{width}}  {'count':>6}  result", f"{'-' * width}  {'-' * 6}  ------"]
    for c in checks:
        verdict = ("FAIL" if c.failed else "PASS") if c.fatal else "info"
        lines.append(f"{c.name:<{width}}  {c.count:>6}  {verdict}")
    for c in checks:
        for example in c.examples:
            lines.append(f"  {c.name}: {example}")
    return "\n".join(lines)


def _span(run: RunRow) -> str:
    end = run.ended.strftime("%H:%M:%S.%f")[:-3] if run.ended else "never ended"
    return f"{run.started.strftime('%H:%M:%S.%f')[:-3]} to {end}"
