"""Create the viewer, editor and publisher groups with their permissions.

The role matrix is frozen here as `routing.roles` defined it when this migration was written (a
migration never imports project code); a change to the roles comes with a migration of its own."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

ROLE_PERMISSIONS = {'editor': ['view_policy',
            'view_policyversion',
            'view_catalogmodel',
            'view_modelprice',
            'view_sdkkey',
            'view_auditentry',
            'add_policy',
            'change_policy',
            'add_policyversion',
            'change_policyversion',
            'delete_policyversion'],
 'publisher': ['view_policy',
               'view_policyversion',
               'view_catalogmodel',
               'view_modelprice',
               'view_sdkkey',
               'view_auditentry',
               'add_policy',
               'change_policy',
               'add_policyversion',
               'change_policyversion',
               'delete_policyversion',
               'publish_policy',
               'add_sdkkey',
               'change_sdkkey',
               'change_catalogmodel',
               'add_modelprice'],
 'viewer': ['view_policy',
            'view_policyversion',
            'view_catalogmodel',
            'view_modelprice',
            'view_sdkkey',
            'view_auditentry']}


def make_roles(apps, schema_editor):
    # Permissions are normally created after all migrations; this one needs them now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    group_model, permission_model = apps.get_model("auth", "Group"), apps.get_model("auth", "Permission")
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        group.permissions.set(
            permission_model.objects.filter(content_type__app_label="routing", codename__in=codenames)
        )


def drop_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=list(ROLE_PERMISSIONS)).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("routing", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(make_roles, drop_roles)]
