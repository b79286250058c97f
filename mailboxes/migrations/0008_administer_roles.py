"""A permission of its own for changing roles (SPEC 9), held by System Administrators."""

from django.db import migrations

PERMISSION = ("mailboxes", "administer_roles")


def grant_to_system_administrators(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are otherwise created after all migrations have run: too late to grant.
    app_config = apps.get_app_config("mailboxes")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permission = Permission.objects.get(content_type__app_label=PERMISSION[0], codename=PERMISSION[1])
    group, _ = Group.objects.get_or_create(name="System Administrator")
    group.permissions.add(permission)


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Permission.objects.filter(content_type__app_label=PERMISSION[0], codename=PERMISSION[1]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("mailboxes", "0007_mailbox_search"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="user",
            options={
                "ordering": ["username"],
                "permissions": [("administer_roles", "Change roles, permissions and other users' passwords")],
                "verbose_name": "user",
            },
        ),
        migrations.RunPython(grant_to_system_administrators, revoke),
    ]
