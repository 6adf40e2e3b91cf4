"""Placeholder kept in sequence: ingestion (daily rollup / ingest speed)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("metrics", "0003_rollup_covering_index"),
    ]

    operations = []
