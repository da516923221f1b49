from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('django_meepo', '0007_cancelled'),
    ]

    operations = [
        migrations.CreateModel(
            name='ScheduleTick',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100)),
                ('tick', models.DateTimeField(help_text='The tick, in UTC.')),
                ('job_id', models.BigIntegerField(blank=True, help_text='The job pushed for the tick.', null=True)),
                ('created_at', models.DateTimeField()),
            ],
            options={
                'db_table': 'meepo_schedule_tick',
                'constraints': [models.UniqueConstraint(fields=('name', 'tick'), name='meepo_schedule_tick_name_tick')],
            },
        ),
    ]
