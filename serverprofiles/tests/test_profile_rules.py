"""Rules P1–P9: each rejects with its message on the right field, and accepts its neighbour."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from mailboxes.models import Mailbox, OrganizationSettings, TestStatus
from mailboxes.services.mailboxes import mailbox_save
from mailboxes.tests.rules import rejected
from serverprofiles.models import AuthenticationMethod as Auth
from serverprofiles.models import EmailServerProfile, ServerType
from serverprofiles.services import ProfileInUseError, profile_create, profile_delete, profile_save

pytestmark = pytest.mark.django_db

EWS = "https://mail.example.test/EWS/Exchange.asmx"


def build(**fields) -> EmailServerProfile:
    values = {
        "name": "Contoso",
        "server_type": ServerType.IMAP_SMTP,
        "incoming_server": "imap.example.test",
        "outgoing_server": "smtp.example.test",
    }
    values.update(fields)
    password = values.pop("password", None)
    profile = EmailServerProfile(**values)
    if password:
        profile.set_incoming_password(password)
    return profile


# P1 -------------------------------------------------------------------------------


def test_name_is_required():
    with rejected("name", "This field cannot be blank"):
        profile_create(build(name=""))
    assert not EmailServerProfile.objects.exists()


def test_name_is_unique():
    profile_create(build(name="Contoso"))
    with rejected("name", "already exists"):
        profile_create(build(name="Contoso"))
    assert EmailServerProfile.objects.count() == 1


def test_server_type_is_required():
    with rejected("server_type"):
        profile_create(build(server_type=""))


def test_named_profile_with_type_is_created():
    assert profile_create(build()).pk


# P2 -------------------------------------------------------------------------------


def test_profile_credentials_require_user_name_and_password():
    with rejected("incoming_username", "user name"):
        profile_create(build(incoming_auth=Auth.PROFILE_CREDENTIALS))
    assert not EmailServerProfile.objects.exists()


def test_profile_credentials_require_password():
    with rejected("incoming_password", "password"):
        profile_create(build(incoming_auth=Auth.PROFILE_CREDENTIALS, incoming_username="svc"))


def test_outgoing_profile_credentials_required_when_not_same_settings():
    with rejected("outgoing_password"):
        profile_create(
            build(
                incoming_auth=Auth.USER_CREDENTIALS,
                use_same_settings_for_outgoing=False,
                outgoing_auth=Auth.PROFILE_CREDENTIALS,
                outgoing_username="svc-out",
            )
        )


def test_profile_credentials_accepted_with_user_name_and_password():
    profile = profile_create(
        build(incoming_auth=Auth.PROFILE_CREDENTIALS, incoming_username="svc", password="Profile-Secret-1")
    )
    stored = EmailServerProfile.objects.get(pk=profile.pk)
    assert stored.incoming_credentials() == ("svc", "Profile-Secret-1")
    assert stored.outgoing_credentials() == ("svc", "Profile-Secret-1")  # same settings


# P3 -------------------------------------------------------------------------------


@pytest.mark.parametrize("auth", [Auth.WINDOWS, Auth.SERVER_TO_SERVER])
def test_exchange_only_auth_rejected_for_imap(auth):
    with rejected("incoming_auth", "only for Exchange"):
        profile_create(build(incoming_auth=auth))


def test_exchange_online_accepts_only_server_to_server():
    with rejected("incoming_auth", "Exchange Online (Hybrid) accepts only"):
        profile_create(
            build(
                server_type=ServerType.EXCHANGE_ONLINE,
                incoming_server=EWS,
                outgoing_server=EWS,
                incoming_auth=Auth.WINDOWS,
            )
        )


def test_exchange_online_with_server_to_server_accepted():
    # SPEC 7: Exchange Online is reached over IMAP and SMTP with OAuth (its locations are
    # host names now, and Server to Server Authentication needs the app's OAuth values).
    exchange_online = build(
        server_type=ServerType.EXCHANGE_ONLINE,
        incoming_server="",
        outgoing_server="",
        incoming_auth=Auth.SERVER_TO_SERVER,
        oauth_tenant_id="contoso.onmicrosoft.com",
        oauth_client_id="app-id",
    )
    exchange_online.set_oauth_client_secret("s3cret-value")
    profile = profile_create(exchange_online)
    assert profile.outgoing_auth == Auth.SERVER_TO_SERVER


def test_windows_auth_accepted_for_exchange():
    profile_create(
        build(
            server_type=ServerType.EXCHANGE,
            incoming_server=EWS,
            outgoing_server=EWS,
            incoming_auth=Auth.WINDOWS,
        )
    )


def test_database_refuses_windows_auth_on_imap():
    profile = profile_create(build())
    with pytest.raises(IntegrityError), transaction.atomic():
        EmailServerProfile.objects.filter(pk=profile.pk).update(incoming_auth=Auth.WINDOWS)


# P4 -------------------------------------------------------------------------------


def test_anonymous_rejected_for_incoming():
    with rejected("incoming_auth", "not valid for incoming"):
        profile_create(build(incoming_auth=Auth.ANONYMOUS))


def test_anonymous_accepted_for_outgoing():
    profile = profile_create(build(use_same_settings_for_outgoing=False, outgoing_auth=Auth.ANONYMOUS))
    assert profile.outgoing_auth == Auth.ANONYMOUS


# P5 -------------------------------------------------------------------------------


def test_auto_discover_rejected_for_imap():
    with rejected("auto_discover", "only to Exchange"):
        profile_create(build(auto_discover=True))


def test_move_failed_rejected_for_pop3():
    with rejected("move_failed_to_undeliverable", "only to Exchange"):
        profile_create(build(server_type=ServerType.POP3_SMTP, move_failed_to_undeliverable=True))


def test_locations_required_without_auto_discover():
    with rejected("incoming_server", "is required"):
        profile_create(build(incoming_server=""))


def test_exchange_locations_must_be_https_urls():
    with rejected("outgoing_server", "https URL"):
        profile_create(
            build(
                server_type=ServerType.EXCHANGE,
                incoming_server=EWS,
                outgoing_server="http://mail.example.test/ews",
            )
        )


def test_imap_locations_must_be_host_names():
    with rejected("incoming_server", "host name"):
        profile_create(build(incoming_server="imap://imap.example.test:993"))


def test_exchange_with_auto_discover_needs_no_locations():
    profile = profile_create(
        build(
            server_type=ServerType.EXCHANGE,
            auto_discover=True,
            incoming_server="",
            outgoing_server="",
            move_failed_to_undeliverable=True,
            incoming_auth=Auth.WINDOWS,
        )
    )
    assert profile.auto_discover


def test_ip_address_is_a_valid_location():
    profile_create(build(incoming_server="127.0.0.1", outgoing_server="::1"))


# P6 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field,value",
    [
        ("incoming_port", 0),
        ("outgoing_port", 65536),
        ("max_connections", 0),
        ("max_connections", 301),
        ("min_polling_interval", 1441),
        ("timeout_ms", 0),
        ("timeout_ms", 60001),
    ],
)
def test_ranges_rejected(field, value):
    with rejected(field):
        profile_create(build(**{field: value}))


@pytest.mark.parametrize(
    "field,value",
    [
        ("incoming_port", 1),
        ("outgoing_port", 65535),
        ("max_connections", 300),
        ("min_polling_interval", 1440),
        ("timeout_ms", 60000),
        ("timeout_ms", 1),
    ],
)
def test_range_limits_accepted(field, value):
    assert getattr(profile_create(build(**{field: value})), field) == value


def test_database_refuses_a_timeout_above_a_minute():
    profile = profile_create(build())
    with pytest.raises(IntegrityError), transaction.atomic():
        EmailServerProfile.objects.filter(pk=profile.pk).update(timeout_ms=60001)


def test_database_refuses_out_of_range_connections():
    profile = profile_create(build())
    with pytest.raises(IntegrityError), transaction.atomic():
        EmailServerProfile.objects.filter(pk=profile.pk).update(max_connections=301)


@pytest.mark.parametrize(
    "server_type,ssl,incoming,outgoing",
    [
        (ServerType.IMAP_SMTP, True, 993, 465),
        (ServerType.IMAP_SMTP, False, 143, 587),
        (ServerType.POP3_SMTP, True, 995, 465),
        (ServerType.POP3_SMTP, False, 110, 587),
    ],
)
def test_empty_ports_are_filled_from_protocol_and_ssl(server_type, ssl, incoming, outgoing):
    profile = profile_create(build(server_type=server_type, incoming_ssl=ssl, outgoing_ssl=ssl))
    assert (profile.incoming_port, profile.outgoing_port) == (incoming, outgoing)


def test_given_ports_are_kept():
    profile = profile_create(build(incoming_port=10143, outgoing_port=2525))
    assert (profile.incoming_port, profile.outgoing_port) == (10143, 2525)


# P7 -------------------------------------------------------------------------------


def test_at_most_one_profile_is_the_default():
    first = profile_create(build(name="First"), make_default=True)
    second = profile_create(build(name="Second"), make_default=True)
    assert not first.is_default
    assert second.is_default
    assert OrganizationSettings.load().default_server_profile == second


def test_unsetting_the_default_leaves_none():
    profile = profile_create(build(), make_default=True)
    profile_save(profile, make_default=False)
    assert OrganizationSettings.load().default_server_profile is None


# P8 -------------------------------------------------------------------------------


def test_profile_in_use_cannot_be_deleted_and_lists_mailboxes(profile, make_forward_mailbox):
    make_forward_mailbox(email="fwd-a@example.test")
    make_forward_mailbox(email="fwd-b@example.test")
    with pytest.raises(ProfileInUseError) as info:
        profile_delete(profile=profile)
    assert "fwd-a@example.test" in str(info.value) and "fwd-b@example.test" in str(info.value)
    assert EmailServerProfile.objects.filter(pk=profile.pk).exists()
    assert Mailbox.objects.filter(server_profile=profile).count() == 2


def test_database_refuses_deleting_a_profile_in_use(profile, make_forward_mailbox):
    from django.db.models import ProtectedError

    make_forward_mailbox()
    with pytest.raises(ProtectedError), transaction.atomic():
        EmailServerProfile.objects.filter(pk=profile.pk).delete()


def test_unused_profile_is_deleted(profile):
    profile_delete(profile=profile)
    assert not EmailServerProfile.objects.filter(pk=profile.pk).exists()


def test_the_default_profile_is_not_deleted_by_someone_who_may_not_change_the_settings(manager):
    profile = profile_create(build(name="Default IMAP"), make_default=True)

    with pytest.raises(ValidationError) as raised:
        profile_delete(profile=profile, actor=manager)

    assert 'The email server profile "Default IMAP" is the default server profile' in raised.value.messages[0]
    assert EmailServerProfile.objects.filter(pk=profile.pk).exists()
    assert OrganizationSettings.load().default_server_profile == profile


def test_deleting_the_default_profile_unsets_it_with_a_new_settings_version(sysadmin):
    profile = profile_create(build(), make_default=True)
    version = OrganizationSettings.load().version

    profile_delete(profile=profile, actor=sysadmin)

    settings = OrganizationSettings.load()
    assert (settings.default_server_profile, settings.version) == (None, version + 1)
    assert not EmailServerProfile.objects.filter(pk=profile.pk).exists()


# P9 -------------------------------------------------------------------------------


def _tested_mailbox(make_user, profile):
    mailbox = make_user().mailbox
    mailbox.server_profile = profile
    mailbox_save(mailbox)
    Mailbox.objects.filter(pk=mailbox.pk).update(
        incoming_status=TestStatus.SUCCESS, outgoing_status=TestStatus.SUCCESS, enabled_incoming=True
    )
    return mailbox


@pytest.mark.parametrize(
    "field,value",
    [
        ("incoming_server", "imap2.example.test"),
        ("incoming_port", 10993),
        ("outgoing_ssl", False),
        ("server_type", ServerType.POP3_SMTP),
    ],
)
def test_connection_change_resets_mailbox_statuses(make_user, profile, field, value):
    mailbox = _tested_mailbox(make_user, profile)
    setattr(profile, field, value)
    profile_save(profile)
    stored = Mailbox.objects.get(pk=mailbox.pk)
    assert (stored.incoming_status, stored.outgoing_status) == (TestStatus.NOT_RUN, TestStatus.NOT_RUN)
    assert not stored.enabled_incoming


def test_description_change_keeps_mailbox_statuses(make_user, profile):
    mailbox = _tested_mailbox(make_user, profile)
    profile.description = "Moved to the new data centre"
    profile_save(profile)
    assert Mailbox.objects.get(pk=mailbox.pk).incoming_status == TestStatus.SUCCESS
