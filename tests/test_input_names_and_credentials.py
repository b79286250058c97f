"""Credentials with control characters are refused when they are saved, not only when a
test finally sends them; names are compared as they look (NFKC, no invisible characters,
trimmed), and a user name mixing look-alike alphabets is refused."""

import pytest
from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from mailboxadmin.validators import confusable_scripts, normalize_name
from mailboxes.models import Mailbox
from mailboxes.services.queues import queue_create
from mailboxes.services.users import user_create
from serverprofiles.models import AuthenticationMethod, EmailServerProfile, ServerType
from tests.fixtures.ui import field_errors, page_form_data

pytestmark = pytest.mark.django_db

NEW_PROFILE = "/serverprofiles/new/"
PROFILE = {
    "name": "Contoso IMAP",
    "server_type": ServerType.IMAP_SMTP,
    "incoming_server": "imap.contoso.test",
    "outgoing_server": "smtp.contoso.test",
    "incoming_auth": AuthenticationMethod.PROFILE_CREDENTIALS,
    "incoming_username": "svc",
    "incoming_password": "Profile-Secret-1",
}
CONTROL = "The password contains a control character (such as a line break or tab). Remove it."
USERNAME_CONTROL = "The user name contains a control character (such as a line break or tab). Remove it."


# Control characters in credentials -----------------------------------------------------


@pytest.mark.parametrize("role", ["manager_client", "sysadmin_client"])
@pytest.mark.parametrize("password", ["Secret\r\nA1 LOGOUT", "Sec\tret", "Secret\x1b"])
def test_the_profile_form_refuses_a_password_with_a_control_character(request, role, password):
    client = request.getfixturevalue(role)

    response = client.post(
        NEW_PROFILE, page_form_data(client, NEW_PROFILE, **{**PROFILE, "incoming_password": password})
    )

    assert response.status_code == 200
    # The model then finds no password: the second message says one is needed.
    assert field_errors(response, "incoming_password")[0] == CONTROL
    assert not EmailServerProfile.objects.exists()


def test_the_profile_form_refuses_a_user_name_with_a_line_break(sysadmin_client):
    data = page_form_data(
        sysadmin_client, NEW_PROFILE, **{**PROFILE, "incoming_username": "svc\r\nA1 LOGOUT"}
    )

    response = sysadmin_client.post(NEW_PROFILE, data)

    assert field_errors(response, "incoming_username") == [USERNAME_CONTROL]
    assert not EmailServerProfile.objects.exists()


def test_the_profile_form_accepts_an_ordinary_password(sysadmin_client):
    response = sysadmin_client.post(NEW_PROFILE, page_form_data(sysadmin_client, NEW_PROFILE, **PROFILE))

    assert response.status_code == 302
    assert EmailServerProfile.objects.get().get_incoming_password() == "Profile-Secret-1"


def test_the_readonly_role_cannot_post_the_profile_form_at_all(readonly_client):
    assert readonly_client.post(NEW_PROFILE, PROFILE).status_code == 403


def test_a_mailbox_password_with_a_line_break_is_refused_when_set():
    mailbox = Mailbox()
    with pytest.raises(ValidationError) as raised:
        mailbox.set_password("Secret\nX")
    assert raised.value.message_dict == {"password": [CONTROL]}
    assert mailbox.password_ciphertext == ""


def test_a_mailbox_user_name_with_a_line_break_is_refused(make_user, profile, org):
    org.default_server_profile = profile
    org.save()
    mailbox = make_user("alice", email="alice@contoso.test").mailbox
    mailbox.allow_credentials, mailbox.username = True, "alice\r\n"
    mailbox.set_password("Alice-Secret-77!")

    with pytest.raises(ValidationError) as raised:
        mailbox.full_clean()

    assert raised.value.message_dict["username"] == [USERNAME_CONTROL]


def test_set_mailbox_credentials_refuses_a_password_with_a_line_break(
    run, make_user, profile, org, monkeypatch
):
    org.default_server_profile = profile
    org.save()
    make_user("alice", email="alice@contoso.test")
    monkeypatch.setenv("ALICE_PASSWORD", "Alice\r\nSecret")

    with pytest.raises(CommandError) as raised:
        run(
            "set_mailbox_credentials",
            "alice@contoso.test",
            "--username",
            "alice",
            "--password-env",
            "ALICE_PASSWORD",
        )

    assert "control character" in str(raised.value)
    assert "Alice" not in str(raised.value).split("alice@contoso.test")[-1]
    assert not Mailbox.objects.get(email="alice@contoso.test").has_password


def test_create_server_profile_refuses_a_password_with_a_line_break(run, monkeypatch):
    monkeypatch.setenv("SVC_PASSWORD", "Svc\nSecret")

    with pytest.raises(CommandError) as raised:
        run(
            "create_server_profile", "--name", "Contoso IMAP", "--server-type", "imap-smtp",
            "--incoming-server", "imap.contoso.test", "--outgoing-server", "smtp.contoso.test",
            "--auth", "profile-credentials", "--username", "svc", "--password-env", "SVC_PASSWORD",
        )  # fmt: skip

    assert "control character" in str(raised.value)
    assert not EmailServerProfile.objects.exists()


def test_apply_config_refuses_a_password_with_a_line_break(run, tmp_path, monkeypatch):
    monkeypatch.setenv("SVC_PASSWORD", "Svc\r\nSecret")
    path = tmp_path / "config.json"
    path.write_text(
        '{"server_profiles": [{"name": "Contoso IMAP", "server_type": "imap-smtp",'
        ' "incoming_server": "imap.contoso.test", "outgoing_server": "smtp.contoso.test",'
        ' "incoming_auth": "profile-credentials", "username": "svc",'
        ' "password_env": "SVC_PASSWORD"}]}',
        encoding="utf-8",
    )

    with pytest.raises(CommandError) as raised:
        run("apply_config", str(path))

    assert "SVC_PASSWORD holds a control character" in str(raised.value)
    assert not EmailServerProfile.objects.exists()


# Names as they look ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "compared"),
    [
        ("Loop IMAP\u200b", "Loop IMAP"),
        ("\u200bLoop\u2060 IMAP", "Loop IMAP"),
        ("  Loop IMAP  ", "Loop IMAP"),
        ("Ｌｏｏｐ IMAP", "Loop IMAP"),
        ("Loop\u00adIMAP", "LoopIMAP"),
        ("Zoë", "Zoë"),
    ],
)
def test_names_are_compared_as_they_look(typed, compared):
    assert normalize_name(typed) == compared


def test_a_profile_name_with_an_invisible_character_is_the_same_name(make_profile):
    make_profile(name="Loop IMAP")

    with pytest.raises(ValidationError) as raised:
        make_profile(name="Loop IMAP\u200b")

    assert list(raised.value.message_dict) == ["name"]
    assert EmailServerProfile.objects.filter(name="Loop IMAP").count() == 1


def test_a_profile_name_is_stored_without_invisible_characters(make_profile):
    assert make_profile(name=" Loop\u200b IMAP ").name == "Loop IMAP"


def test_queue_and_mailbox_names_are_stored_as_they_look(make_user, make_forward_mailbox):
    owner = make_user("owner")
    queue = queue_create(name="Support\u200b ", email="support@contoso.test", owner=owner)
    forward = make_forward_mailbox(name="\ufeffForward box")

    assert (queue.name, forward.name) == ("Support", "Forward box")


def test_a_user_name_mixing_cyrillic_and_latin_letters_is_refused(make_user):
    make_user("alice")

    with pytest.raises(ValidationError) as raised:
        make_user("\u0430lice", email="cyrillic@contoso.test")  # a Cyrillic "а"

    assert raised.value.message_dict["username"] == [
        "This user name mixes Latin and Cyrillic letters, so it can pass for another name. "
        "Use the letters of one alphabet."
    ]


def test_a_user_name_in_one_alphabet_is_accepted(make_user):
    assert make_user("алиса", email="alisa@contoso.test").username == "алиса"
    assert make_user("zoë.müller", email="zoe@contoso.test").username == "zoë.müller"


def test_a_user_name_with_an_invisible_character_is_refused(db):
    with pytest.raises(ValidationError) as raised:
        user_create(username="alice\u200b", email="a@contoso.test", full_name="Alice")
    assert "username" in raised.value.message_dict


@pytest.mark.parametrize(
    ("name", "scripts"),
    [("\u0430lice", ["Latin", "Cyrillic"]), ("\u03bfmega-x", ["Latin", "Greek"]), ("alice", []), ("мир", [])],
)
def test_look_alike_alphabets_are_found(name, scripts):
    assert confusable_scripts(name) == scripts
