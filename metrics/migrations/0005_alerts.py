"""Alerts, their history, notification channels and deliveries.

Permissions follow the role groups' routing permissions (metrics.alerts: viewers read alerts,
editors acknowledge and resolve, publishers manage channels), so no group changes here.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('metrics', '0004_rollup_daily'),
        ('routing', '0002_roles'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='Alert',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('route', models.CharField(blank=True, help_text='"" = the whole policy (its budget).', max_length=200)),
                ('detector', models.CharField(max_length=64)),
                ('severity', models.CharField(choices=[('page', 'page'), ('ticket', 'ticket'), ('info', 'info')], help_text='The highest severity seen while the alert was active.', max_length=16)),
                ('status', models.CharField(choices=[('open', 'open'), ('acknowledged', 'acknowledged'), ('resolved', 'resolved')], default='open', max_length=16)),
                ('summary', models.TextField(help_text='One sentence with the numbers, from the latest evaluation.')),
                ('evidence', models.JSONField(default=dict, help_text='Window, baseline, numbers and test of the latest evaluation.')),
                ('opened_at', models.DateTimeField()),
                ('last_evaluated_at', models.DateTimeField()),
                ('acknowledged_at', models.DateTimeField(blank=True, null=True)),
                ('resolved_at', models.DateTimeField(blank=True, null=True)),
                ('acknowledged_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('policy', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='alerts', to='routing.policy')),
                ('resolved_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-opened_at', '-id'],
            },
        ),
        migrations.CreateModel(
            name='AlertEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('opened', 'opened'), ('escalated', 'escalated'), ('acknowledged', 'acknowledged'), ('resolved', 'resolved'), ('reopened', 'reopened')], max_length=16)),
                ('at', models.DateTimeField()),
                ('actor_label', models.CharField(help_text='Username at the time; "system" for the evaluator.', max_length=150)),
                ('note', models.TextField(blank=True)),
                ('severity', models.CharField(choices=[('page', 'page'), ('ticket', 'ticket'), ('info', 'info')], max_length=16)),
                ('summary', models.TextField(blank=True)),
                ('evidence', models.JSONField(default=dict)),
                ('actor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('alert', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='events', to='metrics.alert')),
            ],
            options={
                'ordering': ['id'],
            },
        ),
        migrations.CreateModel(
            name='NotificationChannel',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=200)),
                ('kind', models.CharField(choices=[('webhook', 'webhook'), ('email', 'email')], max_length=16)),
                ('url', models.URLField(blank=True, help_text='Webhook: where alerts are POSTed.', max_length=2000)),
                ('secret', models.CharField(blank=True, help_text='Webhook: the HMAC-SHA256 key of the X-Signalbox-Signature header.', max_length=200)),
                ('emails', models.JSONField(blank=True, default=list, help_text='Email: the addresses alerts go to.')),
                ('enabled', models.BooleanField(default=True)),
                ('min_severity', models.CharField(choices=[('page', 'page'), ('ticket', 'ticket'), ('info', 'info')], default='ticket', max_length=16)),
                ('consecutive_failures', models.IntegerField(default=0)),
                ('disabled_at', models.DateTimeField(blank=True, null=True)),
                ('disabled_reason', models.CharField(blank=True, max_length=500)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('policy', models.ForeignKey(blank=True, help_text='Empty: every policy.', null=True, on_delete=django.db.models.deletion.CASCADE, related_name='notification_channels', to='routing.policy')),
            ],
            options={
                'ordering': ['name', 'id'],
            },
        ),
        migrations.CreateModel(
            name='Delivery',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('status', models.CharField(choices=[('pending', 'pending'), ('sent', 'sent'), ('failed', 'failed (will retry)'), ('given_up', 'given up')], default='pending', max_length=16)),
                ('attempts', models.IntegerField(default=0)),
                ('last_error', models.TextField(blank=True)),
                ('response_status', models.IntegerField(blank=True, null=True)),
                ('next_attempt_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('sent_at', models.DateTimeField(blank=True, null=True)),
                ('event', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='metrics.alertevent')),
                ('channel', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='metrics.notificationchannel')),
            ],
            options={
                'verbose_name_plural': 'deliveries',
                'ordering': ['-created_at', '-id'],
            },
        ),
        migrations.AddIndex(
            model_name='alert',
            index=models.Index(fields=['policy', 'status'], name='alert_policy_status'),
        ),
        migrations.AddIndex(
            model_name='alert',
            index=models.Index(fields=['opened_at'], name='alert_opened_at'),
        ),
        migrations.AddConstraint(
            model_name='alert',
            constraint=models.UniqueConstraint(condition=models.Q(('status__in', ['open', 'acknowledged'])), fields=('policy', 'detector', 'route'), name='alert_one_active_per_detector_route'),
        ),
        migrations.AddIndex(
            model_name='alertevent',
            index=models.Index(fields=['alert', 'at'], name='alert_event_alert_at'),
        ),
        migrations.AddConstraint(
            model_name='delivery',
            constraint=models.UniqueConstraint(fields=('event', 'channel'), name='delivery_one_per_event_channel'),
        ),
    ]
