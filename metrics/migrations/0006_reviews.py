"""Monthly review marks: who marked which month of a policy's report reviewed, when, with a note."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("metrics", "0005_alerts"),
        ("routing", "0002_roles"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ReportReview",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("month", models.DateField(help_text="First day of the reviewed month.")),
                ("reviewed_by_label", models.CharField(help_text="Username at the time.", max_length=150)),
                ("reviewed_at", models.DateTimeField()),
                ("note", models.TextField(blank=True)),
                ("policy", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                             related_name="report_reviews", to="routing.policy")),
                ("reviewed_by", models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL,
                                                  related_name="+", to=settings.AUTH_USER_MODEL)),
            ],
            options={
                "ordering": ["-reviewed_at", "-id"],
                "indexes": [models.Index(fields=["policy", "month"], name="report_review_policy_month")],
            },
        ),
    ]
