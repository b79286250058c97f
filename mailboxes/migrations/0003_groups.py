"""The three roles, with the permissions each needs."""

from django.db import migrations

ROLES = {
    "System Administrator": None,  # every permission of the product's models
    "Mailbox Manager": [
        "mailboxes.view_mailbox", "mailboxes.add_mailbox", "mailboxes.change_mailbox",
        "mailboxes.delete_mailbox", "mailboxes.test_mailbox", "mailboxes.view_mailboxalert",
        "mailboxes.view_queue", "mailboxes.add_queue", "mailboxes.change_queue", "mailboxes.delete_queue",
        "mailboxes.view_user", "mailboxes.add_user", "mailboxes.change_user", "mailboxes.delete_user",
        "serverprofiles.view_emailserverprofile", "serverprofiles.add_emailserverprofile",
        "serverprofiles.change_emailserverprofile", "serverprofiles.delete_emailserverprofile",
        "mailboxes.view_organizationsettings",
    ],
    "Read-only": [
        "mailboxes.view_mailbox", "mailboxes.view_mailboxalert", "mailboxes.view_queue",
        "mailboxes.view_user", "serverprofiles.view_emailserverprofile",
        "mailboxes.view_organizationsettings",
    ],
}


def create_groups(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ours = Permission.objects.filter(content_type__app_label__in=["mailboxes", "serverprofiles"])
    for name, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        if codenames is None:
            group.permissions.set(ours)
            continue
        wanted = [tuple(c.split(".")) for c in codenames]
        group.permissions.set(
            [p for p in ours.select_related("content_type") if (p.content_type.app_label, p.codename) in wanted]
        )


def delete_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("mailboxes", "0002_initial"),
        ("serverprofiles", "0001_initial"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [migrations.RunPython(create_groups, delete_groups)]
