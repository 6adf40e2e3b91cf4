"""The raw decision table. PostgreSQL: partitioned by day on `ts` (the partitions are created after
every migrate and on demand at ingest, see `metrics.ingest.partitions`). SQLite (the embedded demo):
a plain table.

The SQL is frozen here as it was when this migration was written: a migration never imports project
code, so editing `metrics.schema` cannot change what an old migration creates."""

from django.db import migrations

POSTGRES_CREATE = (
    '\n'
    'CREATE TABLE metrics_decision (\n'
    '    ts timestamptz NOT NULL,\n'
    '    event_id uuid NOT NULL,\n'
    '    received_at timestamptz NOT NULL DEFAULT now(),\n'
    '    key_id integer NOT NULL,\n'
    '    policy_id integer NOT NULL,\n'
    '    policy_version integer NOT NULL,\n'
    '    route varchar(200) NOT NULL,\n'
    '    task_type varchar(200) NOT NULL,\n'
    '    model varchar(255) NOT NULL,\n'
    '    provider varchar(100) NOT NULL,\n'
    '    tier smallint NOT NULL,\n'
    '    attempt smallint NOT NULL,\n'
    '    escalated boolean NOT NULL,\n'
    '    request_id varchar(200) NOT NULL,\n'
    '    reason json NOT NULL,\n'
    '    outcome varchar(20) NOT NULL,\n'
    '    confidence double precision,\n'
    '    tokens_in integer NOT NULL,\n'
    '    tokens_out integer NOT NULL,\n'
    '    cost_usd numeric(30, 15),\n'
    '    unpriced boolean NOT NULL,\n'
    '    latency_ms double precision NOT NULL,\n'
    '    client_app varchar(200) NOT NULL,\n'
    '    client_instance varchar(200) NOT NULL,\n'
    '    client_sdk_version varchar(200) NOT NULL,\n'
    '    attributes json NOT NULL,\n'
    '    PRIMARY KEY (ts, event_id)\n'
    ') PARTITION BY RANGE (ts)\n'
)

SQLITE_CREATE = (
    '\n'
    'CREATE TABLE metrics_decision (\n'
    '    ts datetime NOT NULL,\n'
    '    event_id char(32) NOT NULL,\n'
    '    received_at datetime NOT NULL DEFAULT CURRENT_TIMESTAMP,\n'
    '    key_id integer NOT NULL,\n'
    '    policy_id integer NOT NULL,\n'
    '    policy_version integer NOT NULL,\n'
    '    route varchar(200) NOT NULL,\n'
    '    task_type varchar(200) NOT NULL,\n'
    '    model varchar(255) NOT NULL,\n'
    '    provider varchar(100) NOT NULL,\n'
    '    tier smallint NOT NULL,\n'
    '    attempt smallint NOT NULL,\n'
    '    escalated bool NOT NULL,\n'
    '    request_id varchar(200) NOT NULL,\n'
    '    reason text NOT NULL,\n'
    '    outcome varchar(20) NOT NULL,\n'
    '    confidence real,\n'
    '    tokens_in integer NOT NULL,\n'
    '    tokens_out integer NOT NULL,\n'
    '    cost_usd decimal,\n'
    '    unpriced bool NOT NULL,\n'
    '    latency_ms real NOT NULL,\n'
    '    client_app varchar(200) NOT NULL,\n'
    '    client_instance varchar(200) NOT NULL,\n'
    '    client_sdk_version varchar(200) NOT NULL,\n'
    '    attributes text NOT NULL,\n'
    '    PRIMARY KEY (ts, event_id)\n'
    ')\n'
)

DROP = (

    'DROP TABLE IF EXISTS metrics_decision'
)


def create_decision_table(apps, schema_editor):
    script = POSTGRES_CREATE if schema_editor.connection.vendor == "postgresql" else SQLITE_CREATE
    for statement in filter(None, (s.strip() for s in script.split(";"))):
        schema_editor.execute(statement)


def drop_decision_table(apps, schema_editor):
    schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("metrics", "0001_initial")]

    operations = [migrations.RunPython(create_decision_table, drop_decision_table)]
