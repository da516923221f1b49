"""A record of every run of the test tasks, so tests can count how often each job really ran."""

from django.db import models


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
