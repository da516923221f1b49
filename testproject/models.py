"""A record of every run of the test tasks, so tests can count how often each job really ran."""

from django.db import models

from django_meepo.models import AbstractAttempt, AbstractJob


class Run(models.Model):
    job_id = models.BigIntegerField(db_index=True)
    task = models.CharField(max_length=100)
    cid = models.BigIntegerField()
    attempt = models.IntegerField()
    pid = models.IntegerField()
    finished = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "testproject_run"


class ChaosRun(models.Model):
    """One execution of a chaos job (``python -m bench.chaos``), written on a connection of its own.

    ``run_id`` is drawn once per execution and is unique: the insert is retried with ``INSERT IGNORE`` when its
    answer is lost, so a retried insert never records one execution twice. ``ended`` stays NULL when the run was
    cut short (its worker killed, its connection lost before the update).
    """

    run_id = models.CharField(max_length=32, unique=True)
    job_id = models.BigIntegerField(db_index=True)
    task = models.CharField(max_length=100)
    cid = models.BigIntegerField()
    attempt = models.IntegerField()
    pid = models.IntegerField()
    started = models.DateTimeField()
    ended = models.DateTimeField(null=True)

    class Meta:
        db_table = "testproject_chaosrun"


class OwnJob(AbstractJob):
    """The jobs of the tasks that keep them in a table of their own (``model="testproject.OwnJob"``): the tests of
    per-task tables (Meepo's ``SetTableName``) run the contract and integration suites on it too."""

    class Meta(AbstractJob.Meta):
        db_table = "t_my_job_0831"


class OwnAttempt(AbstractAttempt):
    """The attempt rows of :class:`OwnJob`."""

    job = models.ForeignKey(OwnJob, on_delete=models.CASCADE)

    class Meta(AbstractAttempt.Meta):
        db_table = "t_my_job_0831_attempt"
