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
