"""Placeholder kept in sequence: alerts and notification channels."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("metrics", "0004_rollup_daily"),
    ]

    operations = []
