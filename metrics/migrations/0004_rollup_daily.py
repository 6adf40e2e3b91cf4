"""The daily rollup: `metrics_rollup_daily`, kept equal to the hourly cells summed per UTC day by
triggers on `metrics_rollup_hourly` (see `metrics.sql`), and filled from the hourly cells already there.

The trigger SQL comes from `metrics.sql` at the time the migration runs: change it there only
together with a new migration that recreates the triggers on databases already migrated."""

from django.db import migrations, models


def create_triggers(apps, schema_editor):
    from metrics import sql

    vendor = schema_editor.connection.vendor
    with schema_editor.connection.cursor() as cursor:
        for statement in sql.daily_triggers_create_sql(vendor):
            cursor.execute(statement)
        cursor.execute(sql.daily_backfill_sql(vendor))


def drop_triggers(apps, schema_editor):
    from metrics import sql

    with schema_editor.connection.cursor() as cursor:
        for statement in sql.daily_triggers_drop_sql(schema_editor.connection.vendor):
            cursor.execute(statement)


class Migration(migrations.Migration):

    dependencies = [
        ("metrics", "0003_rollup_covering_index"),
    ]

    operations = [
        migrations.CreateModel(
            name='RollupDaily',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('policy_id', models.IntegerField()),
                ('policy_version', models.IntegerField()),
                ('route', models.CharField(max_length=200)),
                ('task_type', models.CharField(max_length=200)),
                ('model', models.CharField(max_length=255)),
                ('provider', models.CharField(max_length=100)),
                ('tier', models.SmallIntegerField()),
                ('outcome', models.CharField(max_length=20)),
                ('count', models.BigIntegerField(default=0, help_text='Decision records (attempts).')),
                ('requests', models.BigIntegerField(default=0, help_text='Records with attempt = 1.')),
                ('escalations', models.BigIntegerField(default=0, help_text='Records with escalated = true.')),
                ('cost_usd', models.DecimalField(decimal_places=15, default=0, help_text="Sum of the priced records' cost.", max_digits=30)),
                ('unpriced', models.BigIntegerField(default=0, help_text='Records with no cost (model not priced).')),
                ('tokens_in', models.BigIntegerField(default=0)),
                ('tokens_out', models.BigIntegerField(default=0)),
                ('confidence_sum', models.DecimalField(decimal_places=15, default=0, max_digits=30)),
                ('confidence_count', models.BigIntegerField(default=0)),
                ('latency_sum_ms', models.DecimalField(decimal_places=6, default=0, max_digits=30)),
                ('latency_b0', models.BigIntegerField(default=0)),
                ('latency_b1', models.BigIntegerField(default=0)),
                ('latency_b2', models.BigIntegerField(default=0)),
                ('latency_b3', models.BigIntegerField(default=0)),
                ('latency_b4', models.BigIntegerField(default=0)),
                ('latency_b5', models.BigIntegerField(default=0)),
                ('latency_b6', models.BigIntegerField(default=0)),
                ('latency_b7', models.BigIntegerField(default=0)),
                ('latency_b8', models.BigIntegerField(default=0)),
                ('latency_b9', models.BigIntegerField(default=0)),
                ('latency_b10', models.BigIntegerField(default=0)),
                ('day_start', models.DateTimeField(help_text='Start of the UTC day.')),
            ],
            options={
                'db_table': 'metrics_rollup_daily',
                'indexes': [models.Index(fields=['policy_id', 'day_start'], include=('task_type', 'cost_usd', 'count', 'requests', 'unpriced'), name='rollup_daily_policy_cost')],
                'constraints': [models.UniqueConstraint(fields=('day_start', 'policy_id', 'policy_version', 'route', 'task_type', 'model', 'provider', 'tier', 'outcome'), name='rollup_daily_cell')],
            },
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
