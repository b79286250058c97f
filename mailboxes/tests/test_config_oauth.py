"""SPEC 7 in the configuration file: the oauth_* keys, the secret only by its environment
variable (oauth_client_secret_env), never its value."""

import json

import pytest

from serverprofiles.models import EmailServerProfile

SECRET = "Config-Client-Secret-63"
PROFILE = {
    "name": "Modern IMAP",
    "server_type": "imap-smtp",
    "incoming_server": "imap.contoso.test",
    "outgoing_server": "smtp.contoso.test",
    "incoming_auth": "oauth2",
    "oauth_provider": "microsoft",
    "oauth_tenant_id": "contoso.onmicrosoft.com",
    "oauth_client_id": "app-id",
    "oauth_client_secret_env": "CLIENT_SECRET",
}


@pytest.fixture
def apply(run, tmp_path, monkeypatch):
    monkeypatch.setenv("CLIENT_SECRET", SECRET)

    def apply_file(data, *args):
        path = tmp_path / "config.json"
        path.write_text(json.dumps(data), encoding="utf-8")
        return run("apply_config", str(path), *args)

    return apply_file


def test_apply_creates_an_oauth_profile_with_the_secret_from_the_environment(apply, db):
    result = apply({"server_profiles": [PROFILE]})

    profile = EmailServerProfile.objects.get(name="Modern IMAP")
    assert (profile.incoming_auth, profile.oauth_provider, profile.oauth_tenant_id) == (
        "oauth2",
        "microsoft",
        "contoso.onmicrosoft.com",
    )
    assert profile.get_bound_oauth_secret().secret == SECRET
    assert SECRET not in result.output


def test_export_writes_the_oauth_keys_and_only_that_a_secret_is_set(apply, run, tmp_path, db):
    apply({"server_profiles": [PROFILE]})

    run("export_config", "--output", str(tmp_path / "out.json"))

    text = (tmp_path / "out.json").read_text()
    exported = json.loads(text)["server_profiles"][0]
    assert exported["oauth_provider"] == "microsoft"
    assert exported["oauth_client_id"] == "app-id"
    assert exported["oauth_scope"] == ""
    assert exported["oauth_client_secret_set"] is True
    assert SECRET not in text
    assert EmailServerProfile.objects.get().oauth_client_secret_ciphertext not in text


def test_an_exported_oauth_profile_applies_again_unchanged(apply, run, tmp_path, db):
    apply({"server_profiles": [PROFILE]})
    run("export_config", "--output", str(tmp_path / "out.json"))

    result = run("apply_config", str(tmp_path / "out.json"))

    assert "created 0, updated 0" in result.output


def test_missing_secret_names_the_file_key(apply, db):
    from django.core.management.base import CommandError

    without = {key: value for key, value in PROFILE.items() if key != "oauth_client_secret_env"}
    with pytest.raises(CommandError, match="oauth_client_secret_env"):
        apply({"server_profiles": [without]})
    assert not EmailServerProfile.objects.exists()


def test_a_malformed_token_url_is_refused_naming_the_record_and_key(apply, db):
    from django.core.management.base import CommandError

    other = {**PROFILE, "oauth_provider": "other", "oauth_tenant_id": "", "oauth_scope": "mail"}
    with pytest.raises(CommandError) as raised:
        apply({"server_profiles": [{**other, "oauth_token_url": "https://[login.contoso.test/token"}]})

    assert str(raised.value) == (
        "server_profiles[0] (Modern IMAP): oauth_token_url: Token URL must be an https URL such as "
        "https://login.example.com/oauth2/token."
    )
    assert not EmailServerProfile.objects.exists()


def test_a_google_profile_takes_its_key_through_oauth_client_secret_env(apply, monkeypatch, db, oauth_server):
    key = oauth_server.add_service_account()
    monkeypatch.setenv("CLIENT_SECRET", json.dumps(key))
    google = {**PROFILE, "oauth_provider": "google", "oauth_tenant_id": ""}

    apply({"server_profiles": [google]})

    profile = EmailServerProfile.objects.get()
    assert profile.get_bound_oauth_secret().secret == json.dumps(key)
    assert profile.oauth_client_secret_ciphertext == ""
