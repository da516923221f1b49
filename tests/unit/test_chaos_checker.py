"""The chaos checker's definitions (bench/chaos/checker.py): for each, a history that passes and one that fails.

Pure functions over rows: no database, no Redis.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from bench.chaos import checker
from bench.chaos.checker import AttemptRow, FaultEvent, History, JobRow, RunRow

T0 = datetime(2026, 12, 3, 12, 0, 0)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def run(job: int, cid: int, start: float, end: float | None, *, pid: int = 100, attempt: int = 1) -> RunRow:
    return RunRow(job, cid, attempt, pid, at(start), None if end is None else at(end), f"r{job}-{cid}-{start}")


def history(runs: list[RunRow], jobs: list[JobRow] | None = None, **kwargs: object) -> History:
    ids = frozenset({r.job_id for r in runs} | {j.id for j in jobs or []})
    base = History(runs=runs, jobs=jobs if jobs is not None else [JobRow(i, "done", 3, None) for i in sorted(ids)],
                   attempts=[], faults=[], committed=ids, rolled_back=frozenset(), now=at(100))
    return replace(base, **kwargs)  # type: ignore[arg-type]


def by_name(h: History) -> dict[str, checker.Check]:
    return {c.name: c for c in checker.check(h)}


def test_a_clean_history_passes_every_check() -> None:
    h = history([run(1, 2, 0, 1), run(2, 2, 0.5, 2)])
    checks = checker.check(h)
    assert checker.passed(checks)
    assert [c.count for c in checks] == [0] * len(checks)
    assert "PASS" in checker.table(checks) and "FAIL" not in checker.table(checks)


def test_a_committed_job_that_never_ran_is_lost() -> None:
    h = history([run(1, 2, 0, 1)], jobs=[JobRow(1, "done", 3, None), JobRow(2, "done", 3, None)])
    lost = checker.lost(h)
    assert lost.count == 1 and lost.failed and lost.examples == ["job 2"]
    assert not checker.passed(checker.check(h))
    assert "FAIL" in checker.table(checker.check(h))


def test_a_job_an_operator_committed_before_it_ran_is_not_lost() -> None:
    h = history([run(1, 2, 0, 1)], jobs=[JobRow(1, "done", 3, None), JobRow(2, "done", 2, None)],
                operator_committed=frozenset({2}))
    assert checker.lost(h).count == 0
    # … but only once it really ended: an operator commit that did not take leaves it to the other checks.
    h = replace(h, jobs=[JobRow(1, "done", 3, None), JobRow(2, "todo", 1, None)])
    assert checker.lost(h).count == 1


def test_a_second_run_without_a_fault_or_a_recorded_interruption_is_an_unexplained_duplicate() -> None:
    h = history([run(1, 2, 0, 1), run(1, 4, 5, 6)])
    explained, unexplained = checker.duplicates(h)
    assert (explained.count, unexplained.count) == (0, 1)
    assert unexplained.failed and "no attempt recorded" in unexplained.examples[0]
    assert not checker.passed(checker.check(h))


def test_a_second_run_after_a_fault_that_overlapped_the_first_is_explained() -> None:
    kill = FaultEvent("worker_sigkill", at(0.5), at(0.5), pids=frozenset({100}))
    h = history([run(1, 2, 0, None), run(1, 4, 5, 6, pid=200)], faults=[kill])
    explained, unexplained = checker.duplicates(h)
    assert (explained.count, unexplained.count) == (1, 0)
    assert "worker_sigkill" in explained.examples[0] and not explained.failed
    assert checker.passed(checker.check(h))


def test_a_fault_explains_only_the_runs_it_could_reach() -> None:
    first, second = run(1, 2, 0, 1), run(1, 4, 5, 6)
    cases = [
        FaultEvent("worker_sigkill", at(0.5), at(0.5), pids=frozenset({999})),  # another worker
        FaultEvent("operator_repush", at(0.5), at(0.5), job_ids=frozenset({7})),  # another job
        FaultEvent("kill_db_connections", at(2), at(2)),  # after the first run ended
        FaultEvent("clock_ahead", at(0.5), at(0.5), interrupts=False),  # must cause no second run
    ]
    for fault in cases:
        assert checker.duplicates(history([first, second], faults=[fault]))[1].count == 1, fault


def test_an_operator_repush_explains_a_later_run_even_after_the_earlier_run_returned() -> None:
    # The earlier run returned at 1 s, its commit not yet landed (the job read as doing); the repush at 2 s asked
    # for the run at 5 s. The same repush is no explanation for a run that began before it.
    repush = FaultEvent("operator_repush", at(2), at(2), job_ids=frozenset({1}), reruns=True)
    assert [c.count for c in checker.duplicates(history([run(1, 2, 0, 1), run(1, 4, 5, 6)],
                                                        faults=[repush]))] == [1, 0]
    assert checker.duplicates(history([run(1, 2, 0, 1), run(1, 4, 1.5, 1.8)], faults=[repush]))[1].count == 1
    other = FaultEvent("operator_repush", at(2), at(2), job_ids=frozenset({7}), reruns=True)
    assert checker.duplicates(history([run(1, 2, 0, 1), run(1, 4, 5, 6)], faults=[other]))[1].count == 1


def test_a_run_that_never_ended_is_not_explained_by_a_fault_after_the_next_run_began() -> None:
    late = FaultEvent("flushall", at(10), at(10))
    h = history([run(1, 2, 0, None), run(1, 4, 5, 6)], faults=[late])
    assert checker.duplicates(h)[1].count == 1


def test_a_second_run_after_a_recorded_interruption_is_explained_and_after_a_failure_is_no_duplicate() -> None:
    runs = [run(1, 2, 0, 1, attempt=1), run(1, 4, 5, 6, attempt=2)]
    expired = history(runs, attempts=[AttemptRow(1, 1, "lease_expired")])
    assert [c.count for c in checker.duplicates(expired)] == [1, 0]
    failed = history(runs, attempts=[AttemptRow(1, 1, "failed")])
    assert [c.count for c in checker.duplicates(failed)] == [0, 0]
    done = history(runs, attempts=[AttemptRow(1, 1, "done")])
    assert [c.count for c in checker.duplicates(done)] == [0, 1]


def test_a_job_doing_past_its_lease_is_stuck() -> None:
    alive = history([run(1, 2, 0, None)], jobs=[JobRow(1, "doing", 2, at(101))])
    assert checker.stuck(alive).count == 0
    expired = history([run(1, 2, 0, None)], jobs=[JobRow(1, "doing", 2, at(99))])
    stuck = checker.stuck(expired)
    assert stuck.count == 1 and stuck.failed and "job 1" in stuck.examples[0]


def test_cids_must_strictly_increase_along_a_jobs_runs() -> None:
    assert checker.cid_order(history([run(1, 2, 0, 1), run(1, 4, 2, 3)])).count == 0
    backwards = checker.cid_order(history([run(1, 4, 0, 1), run(1, 2, 2, 3)]))
    assert backwards.count == 1 and backwards.failed
    same = checker.cid_order(history([run(1, 2, 0, 1), run(1, 2, 0.5, 3)]))  # one claim run twice
    assert same.count == 1 and "[2, 2]" in same.examples[0]


def test_a_rolled_back_push_must_never_run_nor_exist() -> None:
    clean = history([run(1, 2, 0, 1)], rolled_back=frozenset({9}))
    assert checker.rolled_back_ran(clean).count == 0
    ran = history([run(1, 2, 0, 1), run(9, 2, 0, 1)], rolled_back=frozenset({9}))
    assert checker.rolled_back_ran(ran).count == 1
    exists = history([run(1, 2, 0, 1)], jobs=[JobRow(1, "done", 3, None), JobRow(9, "todo", 1, None)],
                     rolled_back=frozenset({9}))
    assert checker.rolled_back_ran(replace(exists, committed=frozenset({1}))).count == 1


def test_every_committed_job_must_end_done_or_failed() -> None:
    ended = history([run(1, 2, 0, 1), run(2, 2, 0, 1)],
                    jobs=[JobRow(1, "done", 3, None), JobRow(2, "failed", 3, None)])
    assert checker.unrecorded_end(ended).count == 0
    for status in ("todo", "doing", "zombie"):
        h = history([run(1, 2, 0, 1)], jobs=[JobRow(1, status, 3, at(200))])
        assert checker.unrecorded_end(h).count == 1, status
    missing = history([run(1, 2, 0, 1)], jobs=[])
    assert checker.unrecorded_end(replace(missing, committed=frozenset({1}))).examples == ["job 1: row missing"]


def test_a_job_done_must_have_a_run_that_returned_unless_an_operator_committed_it() -> None:
    assert checker.done_unfinished(history([run(1, 2, 0, 1)])).count == 0
    never_returned = history([run(1, 2, 0, None)])
    assert checker.done_unfinished(never_returned).examples == ["job 1"]
    assert not checker.passed(checker.check(never_returned))
    by_operator = replace(never_returned, operator_committed=frozenset({1}))
    assert checker.done_unfinished(by_operator).count == 0
