# The trace context of a job's push (OpenTelemetry, optional): a nullable column, so adding it rewrites nothing
# on MariaDB 10.3+ / MySQL 8 (instant ADD COLUMN) and PostgreSQL.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("django_meepo", "0009_task_pause"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="trace_context",
            field=models.CharField(blank=True, editable=False, max_length=1000, null=True),
        ),
    ]
