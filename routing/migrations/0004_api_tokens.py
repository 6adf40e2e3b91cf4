"""Management API tokens stored hashed (routing.ApiToken) instead of DRF authtoken's clear keys.

Every existing authtoken key keeps working: its SHA-256 is copied into routing_apitoken, then the
clear-text rows are deleted. The authtoken table itself is left empty (the app is no longer
installed; drop it at leisure)."""

import hashlib

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def hash_authtoken_keys(apps, schema_editor):
    connection = schema_editor.connection
    if "authtoken_token" not in connection.introspection.table_names():
        return
    ApiToken = apps.get_model("routing", "ApiToken")
    with connection.cursor() as cursor:
        cursor.execute("SELECT key, user_id FROM authtoken_token")
        rows = cursor.fetchall()
        ApiToken.objects.bulk_create(
            ApiToken(user_id=user_id, prefix=key[:8], hashed_key=hashlib.sha256(key.encode()).hexdigest())
            for key, user_id in rows
        )
        cursor.execute("DELETE FROM authtoken_token")


class Migration(migrations.Migration):

    dependencies = [
        ("routing", "0003_audit_report_review"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ApiToken",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("prefix", models.CharField(help_text="Visible start of the key, to tell tokens apart.", max_length=16)),
                ("hashed_key", models.CharField(max_length=64, unique=True)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="api_tokens",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={"verbose_name": "API token", "ordering": ["-created_at"]},
        ),
        migrations.RunPython(hash_authtoken_keys, migrations.RunPython.noop),
    ]
