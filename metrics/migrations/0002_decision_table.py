from django.db import migrations

from metrics.schema import DROP, POSTGRES_CREATE, SQLITE_CREATE


def create_decision_table(apps, schema_editor):
    """PostgreSQL: a table partitioned by day on `ts` (partitions come from
    metrics.partitions). SQLite (the embedded demo): a plain table."""
    vendor = schema_editor.connection.vendor
    script = POSTGRES_CREATE if vendor == "postgresql" else SQLITE_CREATE
    for statement in filter(None, (s.strip() for s in script.split(";"))):
        schema_editor.execute(statement)
    if vendor == "postgresql":
        from metrics.partitions import partitions_ensure_ahead

        partitions_ensure_ahead(using=schema_editor.connection.alias)


def drop_decision_table(apps, schema_editor):
    schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("metrics", "0001_initial")]

    operations = [migrations.RunPython(create_decision_table, drop_decision_table)]
