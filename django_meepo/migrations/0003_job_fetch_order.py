# The database dispatcher's fetch (dispatch/database.py): due todo rows of a task by priority, due time, id.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('django_meepo', '0002_admin_indexes'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='job',
            index=models.Index(fields=['task', 'status', '-priority', 'due_at', 'id'], name='meepo_job_fetch_order'),
        ),
    ]
