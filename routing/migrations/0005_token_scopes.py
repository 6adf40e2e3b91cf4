"""Scoped management API tokens: a name, a role, an optional policy scope, expiry, revocation and
the last-used time; audit entries name the token an actor acted through.

Existing tokens get the publisher role: they keep acting with their user's rights (as narrowed to
the three roles) and reach every policy."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('routing', '0004_api_tokens'),
    ]

    operations = [
        migrations.AddField(
            model_name='apitoken',
            name='expires_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='apitoken',
            name='last_used_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='apitoken',
            name='name',
            field=models.CharField(blank=True, help_text="What the token is for, e.g. 'ci-deploy'.", max_length=200),
        ),
        migrations.AddField(
            model_name='apitoken',
            name='policies',
            field=models.ManyToManyField(blank=True, help_text='The policies it may reach; none: every policy.', related_name='+', to='routing.policy'),
        ),
        migrations.AddField(
            model_name='apitoken',
            name='revoked_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='apitoken',
            name='role',
            field=models.CharField(choices=[('viewer', 'viewer'), ('editor', 'editor'), ('publisher', 'publisher')], default='publisher', max_length=20),
        ),
        migrations.AddField(
            model_name='auditentry',
            name='api_token',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='routing.apitoken'),
        ),
        migrations.AlterField(
            model_name='auditentry',
            name='action',
            field=models.CharField(choices=[('policy.create', 'Policy created'), ('policy.update', 'Policy updated'), ('draft.save', 'Draft saved'), ('draft.discard', 'Draft discarded'), ('policy.publish', 'Published'), ('policy.rollback', 'Rolled back'), ('key.create', 'SDK key created'), ('key.revoke', 'SDK key revoked'), ('catalog.import', 'Catalog imported'), ('catalog.update', 'Catalog model updated'), ('report.review', 'Monthly report reviewed'), ('token.create', 'API token created'), ('token.revoke', 'API token revoked')], db_index=True, max_length=40),
        ),
    ]
