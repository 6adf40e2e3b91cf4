"""Placeholder kept in sequence: monthly review marks and reports."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("metrics", "0005_alerts"),
    ]

    operations = []
