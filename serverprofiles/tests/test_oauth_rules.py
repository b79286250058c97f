"""SPEC 7: OAuth 2.0 on server profiles: P3 and P10, Exchange Online's defaults, secrets at rest."""

import io
import json

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from mailboxadmin import encryption
from mailboxes.tests.rules import rejected
from serverprofiles.bindings import oauth_binding_refusal, token_url_destination
from serverprofiles.connectors import Cause
from serverprofiles.models import AuthenticationMethod as Auth
from serverprofiles.models import EmailServerProfile, OAuthProvider, ServerType
from serverprofiles.services import profile_create

pytestmark = pytest.mark.django_db

SECRET = "Client-Secret-Value-42"


def oauth_profile(*, secret: str | None = SECRET, key: str | None = None, **fields) -> EmailServerProfile:
    values = {
        "name": "Modern",
        "server_type": ServerType.IMAP_SMTP,
        "incoming_server": "imap.example.test",
        "outgoing_server": "smtp.example.test",
        "incoming_auth": Auth.OAUTH2,
        "oauth_provider": OAuthProvider.OTHER,
        "oauth_token_url": "https://login.example.test/token",
        "oauth_client_id": "app-id",
        "oauth_scope": "mail",
    }
    values.update(fields)
    profile = EmailServerProfile(**values)
    if secret:
        profile.set_oauth_client_secret(secret)
    if key:
        profile.set_oauth_service_account_key(key)
    return profile


def private_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def raw_column(column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM serverprofiles_emailserverprofile WHERE id = %s", [pk])
        return cursor.fetchone()[0]


# P3 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("server_type", [ServerType.IMAP_SMTP, ServerType.POP3_SMTP])
def test_oauth2_accepted_for_pop3_and_imap_profiles(server_type):
    profile = profile_create(oauth_profile(server_type=server_type))
    assert profile.oauth_for("incoming") and profile.oauth_for("outgoing")


@pytest.mark.parametrize("server_type", [ServerType.EXCHANGE, ServerType.EXCHANGE_HYBRID])
def test_oauth2_rejected_for_exchange_types(server_type):
    url = "https://mail.example.test/EWS/Exchange.asmx"
    with rejected("incoming_auth", "valid only for Other (POP3/SMTP) and IMAP/SMTP"):
        profile_create(oauth_profile(server_type=server_type, incoming_server=url, outgoing_server=url))
    assert not EmailServerProfile.objects.exists()


# P10 ------------------------------------------------------------------------------------


def test_oauth_provider_is_required():
    with rejected("oauth_provider", "Choose the OAuth Provider"):
        profile_create(oauth_profile(oauth_provider=""))


def test_client_id_is_required():
    with rejected("oauth_client_id", "Client ID"):
        profile_create(oauth_profile(oauth_client_id=""))


def test_client_secret_is_required():
    with rejected("oauth_client_secret", "client secret"):
        profile_create(oauth_profile(secret=None))
    assert not EmailServerProfile.objects.exists()


def test_microsoft_requires_the_tenant_id():
    with rejected("oauth_tenant_id", "Enter the Tenant ID"):
        profile_create(oauth_profile(oauth_provider=OAuthProvider.MICROSOFT, oauth_token_url=""))


def test_microsoft_tenant_gives_the_token_url_and_the_default_scope():
    profile = profile_create(
        oauth_profile(
            oauth_provider=OAuthProvider.MICROSOFT,
            oauth_tenant_id="contoso.com",
            oauth_token_url="",
            oauth_scope="",
        )
    )
    assert profile.oauth_token_endpoint == "https://login.microsoftonline.com/contoso.com/oauth2/v2.0/token"
    assert profile.oauth_effective_scope == "https://outlook.office365.com/.default"


def test_microsoft_national_cloud_token_url_is_kept():
    url = "https://login.microsoftonline.us/contoso.com/oauth2/v2.0/token"
    profile = profile_create(
        oauth_profile(
            oauth_provider=OAuthProvider.MICROSOFT, oauth_tenant_id="contoso.com", oauth_token_url=url
        )
    )
    assert profile.oauth_token_endpoint == url


def test_other_requires_the_token_url():
    with rejected("oauth_token_url", "Enter the Token URL"):
        profile_create(oauth_profile(oauth_token_url=""))


@pytest.mark.parametrize(
    "url",
    [
        "http://login.example.test/token",
        "ftp://login.example.test/",
        "https://user:pw@login.test/",
        "https://[login.example.test/token",  # no URL to urlsplit(): "Invalid IPv6 URL"
    ],
)
def test_token_url_must_be_https(url):
    with rejected("oauth_token_url", "Token URL must"):
        profile_create(oauth_profile(oauth_token_url=url))


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/token", "http://[::1]:8080/token"])
def test_plain_http_token_url_accepted_to_a_loopback_address(url):
    assert profile_create(oauth_profile(oauth_token_url=url)).oauth_token_endpoint == url


def test_other_without_default_scope_requires_one():
    with rejected("oauth_scope", "scope"):
        profile_create(oauth_profile(oauth_scope=""))


def test_google_requires_a_service_account_key():
    with rejected("oauth_service_account_key", "JSON key"):
        profile_create(oauth_profile(oauth_provider=OAuthProvider.GOOGLE, oauth_token_url=""))


def test_google_refuses_a_key_that_is_not_a_service_account_key():
    with rejected("oauth_service_account_key", "client_email and private_key"):
        profile_create(oauth_profile(oauth_provider=OAuthProvider.GOOGLE, secret=None, key='{"a": 1}'))


def other_key_pem(kind: str) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if kind == "rsa-public":
        public = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
        return public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
    key = ec.generate_private_key(ec.SECP256R1()) if kind == "ec" else ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.mark.parametrize("kind", ["not-a-key", "ec", "ed25519", "rsa-public"])
def test_google_refuses_a_key_without_an_rsa_private_key(kind):
    private_key = "-----BEGIN..." if kind == "not-a-key" else other_key_pem(kind)
    key = json.dumps({"client_email": "svc@p.iam.gserviceaccount.com", "private_key": private_key})
    with rejected("oauth_service_account_key", "no RSA private key"):
        profile_create(oauth_profile(oauth_provider=OAuthProvider.GOOGLE, secret=None, key=key))


def test_google_accepts_a_service_account_key_and_keeps_no_client_secret():
    key = json.dumps({"client_email": "svc@p.iam.gserviceaccount.com", "private_key": private_key_pem()})
    profile = profile_create(
        oauth_profile(oauth_provider=OAuthProvider.GOOGLE, oauth_token_url="", oauth_scope="", key=key)
    )
    assert profile.oauth_token_endpoint == "https://oauth2.googleapis.com/token"
    assert profile.oauth_effective_scope == "https://mail.google.com/"
    assert profile.oauth_client_secret_ciphertext == ""  # the secret typed too was not kept
    assert profile.get_bound_oauth_secret().secret == key


def test_leaving_oauth_clears_its_values_and_secret():
    profile = profile_create(oauth_profile())
    profile.incoming_auth = Auth.USER_CREDENTIALS
    profile.full_clean()
    profile.save()
    profile.refresh_from_db()
    assert (profile.oauth_provider, profile.oauth_client_id, profile.oauth_client_secret_ciphertext) == (
        "",
        "",
        "",
    )


# Exchange Online ------------------------------------------------------------------------


def test_exchange_online_defaults_to_the_office365_imap_and_smtp_servers():
    profile = oauth_profile(
        server_type=ServerType.EXCHANGE_ONLINE,
        incoming_server="",
        outgoing_server="",
        incoming_auth=Auth.SERVER_TO_SERVER,
        oauth_provider="",
        oauth_token_url="",
        oauth_tenant_id="contoso.com",
    )
    profile = profile_create(profile)
    assert (profile.incoming_server, profile.incoming_port, profile.incoming_ssl) == (
        "outlook.office365.com",
        993,
        True,
    )
    assert (profile.outgoing_server, profile.outgoing_port, profile.outgoing_ssl) == (
        "smtp.office365.com",
        587,
        False,
    )
    assert (profile.incoming_protocol, profile.outgoing_protocol) == ("imap", "smtp")
    assert profile.oauth_provider == OAuthProvider.MICROSOFT


def test_exchange_online_server_to_server_needs_the_app_values():
    with rejected("oauth_tenant_id", "Enter the Tenant ID"):
        profile_create(
            oauth_profile(
                server_type=ServerType.EXCHANGE_ONLINE,
                incoming_auth=Auth.SERVER_TO_SERVER,
                incoming_server="outlook.office365.com",
                outgoing_server="smtp.office365.com",
            )
        )


# Secrets at rest ------------------------------------------------------------------------


def test_client_secret_column_holds_a_ciphertext_bound_to_the_token_url():
    profile = profile_create(oauth_profile())
    stored = raw_column("oauth_client_secret_ciphertext", profile.pk)
    assert SECRET not in stored and stored.startswith("gAAAA")
    bound = EmailServerProfile.objects.get(pk=profile.pk).get_bound_oauth_secret()
    assert bound.secret == SECRET
    assert bound.allows(token_url_destination("https://LOGIN.example.test/token"))
    assert SECRET not in repr(profile) and SECRET not in str(profile)


def test_a_secret_is_refused_for_another_token_url_until_typed_again():
    profile = profile_create(oauth_profile())
    profile.oauth_token_url = "https://elsewhere.example.test/token"
    profile.full_clean()
    profile.save()
    refusal = oauth_binding_refusal(profile.get_bound_oauth_secret(), profile.oauth_token_endpoint)
    assert refusal is not None and "https://login.example.test/token" in refusal.message
    assert SECRET not in refusal.message

    profile.set_oauth_client_secret(SECRET)
    profile.save()
    assert oauth_binding_refusal(profile.get_bound_oauth_secret(), profile.oauth_token_endpoint) is None


def test_rotate_encryption_keys_rotates_the_oauth_secret(settings):
    profile = profile_create(oauth_profile())
    old = raw_column("oauth_client_secret_ciphertext", profile.pk)
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), *settings.FIELD_ENCRYPTION_KEYS]
    call_command("rotate_encryption_keys", stdout=io.StringIO())
    new = raw_column("oauth_client_secret_ciphertext", profile.pk)
    assert new != old
    assert encryption.decrypt_bound(new, record="").secret == SECRET


def test_the_database_refuses_an_oauth2_profile_without_its_client():
    from django.db import IntegrityError, transaction

    profile = profile_create(oauth_profile())
    with pytest.raises(IntegrityError), transaction.atomic():
        EmailServerProfile.objects.filter(pk=profile.pk).update(oauth_client_secret_ciphertext="")
    with pytest.raises(IntegrityError), transaction.atomic():
        EmailServerProfile.objects.filter(pk=profile.pk).update(oauth_client_id="")


def test_a_service_account_key_for_another_token_url_is_called_a_key():
    from serverprofiles.oauth import profile_access_token

    key = json.dumps({"client_email": "svc@p.iam.gserviceaccount.com", "private_key": private_key_pem()})
    profile = profile_create(
        oauth_profile(oauth_provider=OAuthProvider.GOOGLE, oauth_token_url="", oauth_scope="", key=key)
    )
    EmailServerProfile.objects.filter(pk=profile.pk).update(
        oauth_token_url="https://elsewhere.example.test/t"
    )

    refusal = profile_access_token(EmailServerProfile.objects.get(pk=profile.pk), subject="a@example.test")

    assert refusal.cause == Cause.SECRET_FOR_ANOTHER_TOKEN_URL
    assert refusal.message.startswith(
        "Secret entered for another Token URL: the stored service account key was entered for "
        "[https://oauth2.googleapis.com/token]"
    )
    assert "password" not in refusal.message.lower() and "client secret" not in refusal.message
