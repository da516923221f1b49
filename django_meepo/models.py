"""The database side: jobs (the truth), their failed attempts, workers and the sweeper's leadership lease.

No code outside ``statemachine.py`` writes ``Job.status`` or ``Job.cid``; a push is an INSERT (``push.py``) and
purging finished jobs is a DELETE.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import models

from .states import Status

if TYPE_CHECKING:
    from collections.abc import Iterable


class JobQuerySet(models.QuerySet["Job"]):
    def push(self, task: str, payload: bytes | bytearray | memoryview | None = None, **kwargs: Any) -> AbstractJob:
        """INSERT one job now, in the caller's transaction; its id is dispatched after the commit.

        Keyword arguments: ``json`` (a JSON-serialisable value instead of ``payload``), ``delay`` (seconds or
        timedelta), ``due_at`` (aware datetime), ``priority`` (-100..100), ``idempotency_key`` (unique per
        task: pushing it again returns the existing job), ``concurrency_key`` (the job's key for the task's
        ``KEY_CONCURRENCY`` / ``KEY_RATE``), ``using`` (database alias).
        """
        from .push import push

        return push(task, payload, **kwargs)

    def push_many(self, task: str, payloads: Iterable[Any] | None = None, **kwargs: Any) -> list[AbstractJob]:
        """INSERT many jobs of one task in as few statements as their size allows; dispatch them in one trip."""
        from .push import push_many

        return push_many(task, payloads, **kwargs)

    def due(self, task: str, now: datetime) -> JobQuerySet:
        return self.filter(task=task, status=Status.TODO, due_at__lte=now)


JobManager = models.Manager.from_queryset(JobQuerySet)


class AbstractJob(models.Model):
    """A job row; subclass it to keep a task's jobs in a table of their own (docs/tables.md).

    ``class EmailJob(AbstractJob): class Meta(AbstractJob.Meta): db_table = "t_my_job_0831"`` in an app's
    models.py, with an :class:`AbstractAttempt` subclass whose ``job`` is a ForeignKey to it, and
    ``@task("emails", model="shop.EmailJob")``. :class:`Job` (``meepo_job``) is the default, shared by every task
    that names no model. Ids are unique per table: whatever names a job by id names its task too.
    """

    id = models.BigAutoField(primary_key=True)
    task = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TODO)
    cid = models.PositiveBigIntegerField(default=1, help_text="Fencing token; increases on every transition.")
    priority = models.SmallIntegerField(default=0)
    payload = models.BinaryField(default=b"")
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    failed_times = models.PositiveIntegerField(default=0)
    rescues = models.PositiveIntegerField(default=0, help_text="Times the sweeper found its lease expired.")
    attempts = models.PositiveIntegerField(default=0, help_text="Times the job was claimed by a worker.")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    due_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True, default="")
    token = models.CharField(max_length=40, blank=True, default="",
                             help_text="Nonce of the last batch statement that changed the row.")
    last_error = models.TextField(blank=True, default="")
    result = models.TextField(null=True, blank=True)
    # What a running job reported through ``job.progress(done, total, note)`` (throttled, see progress.py); NULL
    # until its first report. Written at the claim's cid while ``doing``; left as the last run wrote it.
    progress_done = models.PositiveBigIntegerField(null=True, blank=True)
    progress_total = models.PositiveBigIntegerField(null=True, blank=True)
    progress_note = models.CharField(max_length=200, null=True, blank=True)
    progress_at = models.DateTimeField(null=True, blank=True)
    # A unique job (``push(unique_key=...)``, see unique.py): the key as pushed, kept for display, and the key
    # while the job holds it — unique per task, NULL once a later push found this job out of its scope.
    unique_key = models.CharField(max_length=200, null=True, blank=True)
    unique_hold = models.CharField(max_length=200, null=True, blank=True, editable=False)
    # The W3C trace context (JSON: traceparent, tracestate) of the span that pushed the job, when the push ran in a
    # recorded OpenTelemetry trace (tracing.py): each run's consumer span links to it. NULL otherwise.
    trace_context = models.CharField(max_length=1000, null=True, blank=True, editable=False)
    # The job's key for per-key flow control (``push(concurrency_key=...)``, limits.py): at most the task's
    # KEY_CONCURRENCY jobs of one key run at once, at most KEY_RATE start per period. NULL: no key.
    concurrency_key = models.CharField(max_length=200, null=True, blank=True, editable=False)

    objects = JobManager()

    class Meta:
        abstract = True
        indexes = [
            models.Index(fields=["task", "status", "due_at"]),
            models.Index(fields=["task", "status", "lease_until"]),
            models.Index(fields=["status", "id"]),
            models.Index(fields=["task", "id"]),
            models.Index(fields=["finished_at", "task", "status"]),
            models.Index(fields=["idempotency_key"]),
            models.Index(fields=["failed_times", "id"]),
            models.Index(fields=["created_at"]),
            models.Index(fields=["task", "status", "-priority", "due_at", "id"]),
        ]
        constraints = [
            models.UniqueConstraint(fields=["task", "idempotency_key"], name="%(app_label)s_%(class)s_idem_key"),
            models.UniqueConstraint(fields=["task", "unique_hold"], name="%(app_label)s_%(class)s_unique_hold"),
        ]

    def __str__(self) -> str:
        return f"{self.task}#{self.id} ({self.status}, cid {self.cid})"

    @property
    def payload_bytes(self) -> bytes:
        return bytes(self.payload or b"")

    def payload_json(self) -> Any:
        return json.loads(self.payload_bytes)

    def attempt_history(self) -> list[AttemptInfo]:
        """Every attempt in order: the recorded ones (see Attempt), then the latest if it is not among them."""
        from .tables import for_model

        attempts = for_model(type(self)).attempts_of(self._state.db or "default", [self.id])
        rows = [AttemptInfo(a.number, a.worker, a.started_at, a.finished_at, a.outcome, a.error)
                for a in attempts.order_by("number", "id")]
        recorded = {r.number for r in rows}
        if self.attempts and self.attempts not in recorded and self.started_at is not None:
            outcome = {Status.DONE.value: "done", Status.DOING.value: "running"}.get(self.status, self.status)
            rows.append(AttemptInfo(self.attempts, self.worker, self.started_at, self.finished_at, outcome, ""))
        return rows


class Job(AbstractJob):
    """The shared job table, ``meepo_job``: every task that names no model of its own keeps its jobs here."""

    class Meta(AbstractJob.Meta):
        db_table = "meepo_job"
        indexes = [
            models.Index(fields=["task", "status", "due_at"], name="meepo_job_task_status_due"),
            models.Index(fields=["task", "status", "lease_until"], name="meepo_job_task_status_lease"),
            # The admin's filters (newest first) and search, the dashboard's throughput and the purge.
            models.Index(fields=["status", "id"], name="meepo_job_status_id"),
            models.Index(fields=["task", "id"], name="meepo_job_task_id"),
            models.Index(fields=["finished_at", "task", "status"], name="meepo_job_finished"),
            models.Index(fields=["idempotency_key"], name="meepo_job_idem_key"),
            # The admin's "has failed" and "created" filters: without these their capped count reads every row
            # when few match. Both grow at their right edge on INSERT (failed_times 0, newest time), as id does.
            models.Index(fields=["failed_times", "id"], name="meepo_job_failed_id"),
            models.Index(fields=["created_at"], name="meepo_job_created"),
            # The database dispatcher's fetch: due todo rows of a task by priority (high first), due time, id.
            models.Index(fields=["task", "status", "-priority", "due_at", "id"], name="meepo_job_fetch_order"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["task", "idempotency_key"], name="meepo_job_task_idem_key"),
            models.UniqueConstraint(fields=["task", "unique_hold"], name="meepo_job_task_unique_hold"),
        ]
        permissions = [
            ("repush_job", "Can force-repush a job"),
            ("commit_job", "Can commit a job's status by hand"),
            ("cancel_job", "Can cancel a job"),
        ]



@dataclass(frozen=True, slots=True)
class AttemptInfo:
    number: int
    worker: str
    started_at: datetime | None
    finished_at: datetime | None
    outcome: str
    error: str


class AbstractAttempt(models.Model):
    """A finished attempt the job row no longer describes: a failure, an expired lease, a time limit, a hand-back
    or a snooze when it happens; a ``done`` run, or a run cut short, when an operator repushes, commits or cancels
    the job."""

    class Outcome(models.TextChoices):
        FAILED = "failed", "failed"
        LEASE_EXPIRED = "lease_expired", "lease expired"
        TIME_LIMIT = "time_limit", "time limit exceeded"
        RELEASED = "released", "handed back"
        DONE = "done", "done"
        SUPERSEDED = "superseded", "stopped by an operator"
        SNOOZED = "snoozed", "snoozed"
        CANCELLED = "cancelled", "cancelled"

    # A subclass declares ``job = models.ForeignKey(<its AbstractJob subclass>, on_delete=models.CASCADE)``.
    number = models.PositiveIntegerField()
    worker = models.CharField(max_length=200, blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField()
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    error_class = models.CharField(max_length=300, blank=True, default="")
    error = models.TextField(blank=True, default="")

    job_id: int
    objects = models.Manager()

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"attempt {self.number} of job {self.job_id}: {self.outcome}"


class Attempt(AbstractAttempt):
    """The attempts of jobs in the shared table (``meepo_attempt``)."""

    job = models.ForeignKey(Job, on_delete=models.CASCADE)

    class Meta(AbstractAttempt.Meta):
        db_table = "meepo_attempt"


class Worker(models.Model):
    """A running consumer process; it refreshes ``last_seen`` while it runs and deletes its row at exit."""

    id = models.CharField(max_length=200, primary_key=True)
    hostname = models.CharField(max_length=200)
    pid = models.PositiveIntegerField()
    tasks = models.TextField(help_text="Comma-separated task names.")
    parallel = models.PositiveIntegerField(default=1)
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField()
    processed = models.PositiveBigIntegerField(default=0)
    failed = models.PositiveBigIntegerField(default=0)

    class Meta:
        db_table = "meepo_worker"

    def __str__(self) -> str:
        return self.id


class Lease(models.Model):
    """A named leadership lease (one sweeper leads at a time); taken and renewed by conditional UPDATEs."""

    name = models.CharField(max_length=100, primary_key=True)
    holder = models.CharField(max_length=200, blank=True, default="")
    expires_at = models.DateTimeField()

    class Meta:
        db_table = "meepo_lease"

    def __str__(self) -> str:
        return f"{self.name} held by {self.holder or 'nobody'}"


class ScheduleTick(models.Model):
    """A tick of a ``MEEPO["SCHEDULE"]`` entry that got its job: the UNIQUE key on (name, tick) is what makes it
    one job per tick across every sweeper (``schedule.py``). ``job_id`` is not a foreign key: purging the job
    keeps the tick. Rows older than 30 days before a schedule's newest tick are deleted as it wins new ones."""

    name = models.CharField(max_length=100)
    tick = models.DateTimeField(help_text="The tick, in UTC.")
    job_id = models.BigIntegerField(null=True, blank=True, help_text="The job pushed for the tick.")
    created_at = models.DateTimeField()

    class Meta:
        db_table = "meepo_schedule_tick"
        constraints = [
            models.UniqueConstraint(fields=["name", "tick"], name="meepo_schedule_tick_name_tick"),
        ]

    def __str__(self) -> str:
        return f"{self.name} at {self.tick:%Y-%m-%d %H:%M:%S} UTC (job {self.job_id})"


class TaskPause(models.Model):
    """A paused task: while its row exists no worker claims its jobs (pushes are still accepted, running jobs
    finish). Written by ``api.pause()`` / ``meepo_pause`` / the dashboard; read by workers (``pauses.py``)."""

    task = models.CharField(max_length=100, unique=True)
    paused_at = models.DateTimeField()
    paused_by = models.CharField(max_length=200, blank=True, default="")

    class Meta:
        db_table = "meepo_task_pause"
        permissions = [("pause_task", "Can pause and resume tasks")]

    def __str__(self) -> str:
        return f"{self.task} paused"


class FlowLimit(models.Model):
    """The row a limited claim of a task locks (``flow_key`` ""), and one token bucket per task or key for rate
    limits while they are counted in the database (limits.py, ratelimit.py). Not a job's state: claims still
    change jobs only through the state machine."""

    task = models.CharField(max_length=100)
    flow_key = models.CharField(max_length=200, blank=True, default="")
    tokens = models.FloatField(default=0.0)
    refilled_at = models.DateTimeField(null=True, blank=True)
    claims = models.PositiveBigIntegerField(default=0, help_text="Limited claims that took this row's lock.")

    class Meta:
        db_table = "meepo_flow_limit"
        constraints = [models.UniqueConstraint(fields=["task", "flow_key"], name="meepo_flow_limit_task_key")]

    def __str__(self) -> str:
        return f"{self.task}:{self.flow_key}" if self.flow_key else self.task


class StatSample(models.Model):
    """One minute of one task, as the task's leading sweeper saw it (``samples.py``): the admin dashboard's charts.

    The UNIQUE key on (task, minute) makes it one row per task per minute whichever sweeper leads, however often a
    write is retried. Rows older than ``MEEPO["RETENTION_DAYS"]`` are deleted by the sweepers.
    """

    task = models.CharField(max_length=100)
    minute = models.DateTimeField(help_text="The minute's start, in UTC.")
    done = models.PositiveIntegerField(default=0, help_text="Jobs finished done in the minute.")
    failed = models.PositiveIntegerField(default=0, help_text="Jobs finished failed in the minute.")
    depth = models.PositiveIntegerField(default=0, help_text="Due todo jobs when the sample was taken.")
    oldest_due_seconds = models.FloatField(null=True, blank=True,
                                           help_text="Age of the oldest due todo job when the sample was taken.")
    latency_p50 = models.FloatField(null=True, blank=True, help_text="Median pickup latency (seconds).")
    latency_p95 = models.FloatField(null=True, blank=True, help_text="95th percentile pickup latency (seconds).")
    created_at = models.DateTimeField()

    class Meta:
        db_table = "meepo_stat_sample"
        constraints = [
            models.UniqueConstraint(fields=["task", "minute"], name="meepo_stat_sample_task_minute"),
        ]
        indexes = [models.Index(fields=["minute"], name="meepo_stat_sample_minute")]

    def __str__(self) -> str:
        return f"{self.task} at {self.minute:%Y-%m-%d %H:%M} UTC"


class Dashboard(Job):
    """No table: an entry "Dashboard" in the admin's app list that leads to the job dashboard (``admin/index_link``)."""

    class Meta:
        proxy = True
        verbose_name = "dashboard"
        verbose_name_plural = "dashboard"
        default_permissions = ()
