"""The suite's OAuth token server behaves as the providers' endpoints do."""

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.fixtures.oauth_server import JWT_BEARER


def post(url: str, form: dict, headers=None) -> tuple[int, dict]:
    request = urllib.request.Request(url, urllib.parse.urlencode(form).encode(), headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def signed_assertion(key: dict, **claims) -> str:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(time.time())
    body = {"iss": key["client_email"], "aud": key["token_uri"], "iat": now, "exp": now + 600, **claims}
    signing_input = (
        f"{b64(json.dumps({'alg': 'RS256', 'typ': 'JWT'}).encode())}.{b64(json.dumps(body).encode())}"
    )
    private_key = serialization.load_pem_private_key(key["private_key"].encode(), password=None)
    signature = private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"


def test_client_credentials_in_the_body_get_an_app_only_token(oauth_server):
    status, body = post(
        oauth_server.token_url,
        {
            "grant_type": "client_credentials",
            "client_id": oauth_server.client_id,
            "client_secret": oauth_server.client_secret,
            "scope": "https://outlook.office365.com/.default",
        },
    )
    assert status == 200 and body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert oauth_server.token_allows(body["access_token"], "anyone@example.test")
    assert oauth_server.requests["/token"] == 1


def test_client_credentials_by_http_basic_get_a_token(oauth_server):
    basic = base64.b64encode(f"{oauth_server.client_id}:{oauth_server.client_secret}".encode()).decode()
    status, body = post(
        oauth_server.token_url, {"grant_type": "client_credentials"}, {"Authorization": f"Basic {basic}"}
    )
    assert status == 200 and body["access_token"]


def test_a_wrong_client_secret_is_refused_as_invalid_client(oauth_server):
    status, body = post(
        oauth_server.token_url,
        {"grant_type": "client_credentials", "client_id": oauth_server.client_id, "client_secret": "wrong"},
    )
    assert status == 401 and body["error"] == "invalid_client" and body["error_description"]


def test_an_app_limited_to_some_mailboxes_gets_tokens_only_for_those(oauth_server):
    oauth_server.register_client("limited", "s3", mailboxes=["a@example.test"])
    token = oauth_server.issue_token(client_id="limited")
    assert oauth_server.token_allows(token, "A@example.test")
    assert not oauth_server.token_allows(token, "b@example.test")


def test_the_jwt_bearer_grant_gives_a_token_for_the_subject_only(oauth_server):
    key = oauth_server.add_service_account()
    status, body = post(
        oauth_server.token_url,
        {"grant_type": JWT_BEARER, "assertion": signed_assertion(key, sub="a@example.test")},
    )
    assert status == 200
    assert oauth_server.token_allows(body["access_token"], "a@example.test")
    assert not oauth_server.token_allows(body["access_token"], "b@example.test")


def test_the_jwt_bearer_grant_refuses_a_key_the_server_does_not_know(oauth_server):
    key = oauth_server.add_service_account()
    other = oauth_server.add_service_account(client_email="other@test-project.iam.example.test")
    forged = {**other, "client_email": key["client_email"]}
    status, body = post(
        oauth_server.token_url,
        {"grant_type": JWT_BEARER, "assertion": signed_assertion(forged, sub="a@example.test")},
    )
    assert (status, body["error"]) == (400, "invalid_grant")
    assert "Signature" in body["error_description"]


def test_the_jwt_bearer_grant_refuses_an_assertion_without_subject(oauth_server):
    key = oauth_server.add_service_account()
    status, body = post(
        oauth_server.token_url, {"grant_type": JWT_BEARER, "assertion": signed_assertion(key)}
    )
    assert (status, body["error"]) == (400, "invalid_grant")


def test_introspection_names_the_user_of_a_live_token_only(oauth_server):
    token = oauth_server.issue_token("a@example.test")
    expired = oauth_server.issue_token("a@example.test", expires_in=-1)
    assert post(f"{oauth_server.url}/introspect", {"token": token})[1]["username"] == "a@example.test"
    assert post(f"{oauth_server.url}/introspect", {"token": expired})[1] == {"active": False}
    assert post(f"{oauth_server.url}/introspect", {"token": "nonsense"})[1] == {"active": False}


def test_check_answers_whether_a_token_may_open_a_mailbox(oauth_server):
    token = oauth_server.issue_token("a@example.test")
    assert post(f"{oauth_server.url}/check", {"token": token, "user": "a@example.test"})[1] == {
        "active": True
    }
    assert post(f"{oauth_server.url}/check", {"token": token, "user": "b@example.test"})[1] == {
        "active": False
    }
    assert oauth_server.requests["/check"] == 2


def xoauth2(user: str, token: str) -> bytes:
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def test_the_oauth_dovecot_takes_a_token_for_the_mailbox_and_refuses_another(oauth_server, oauth_dovecot):
    import imaplib

    user = oauth_dovecot.username
    with imaplib.IMAP4(oauth_dovecot.plain_host, oauth_dovecot.imap_port, timeout=5) as client:
        client.authenticate("XOAUTH2", lambda _: xoauth2(user, oauth_server.issue_token(user)))
        client.logout()
    with imaplib.IMAP4(oauth_dovecot.plain_host, oauth_dovecot.imap_port, timeout=5) as client:
        token = oauth_server.issue_token("someone-else@example.test")
        answers = iter([xoauth2(user, token), b""])  # the error continuation is answered empty
        with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
            client.authenticate("XOAUTH2", lambda _: next(answers))
    with imaplib.IMAP4(oauth_dovecot.plain_host, oauth_dovecot.imap_port, timeout=5) as client:
        typ, _ = client.login(user, oauth_dovecot.password)  # passwords still work
        assert typ == "OK"


def test_the_oauth_smtp_server_takes_a_token_for_the_mailbox_and_refuses_another(
    oauth_server, oauth_smtp_servers
):
    import smtplib

    user = oauth_smtp_servers.username
    with smtplib.SMTP(oauth_smtp_servers.host, oauth_smtp_servers.plain_port, timeout=5) as client:
        client.ehlo()
        assert "XOAUTH2" in client.esmtp_features["auth"] and "OAUTHBEARER" in client.esmtp_features["auth"]
        code, _ = client.auth(
            "XOAUTH2", lambda challenge=None: xoauth2(user, oauth_server.issue_token(user)).decode()
        )
        assert code == 235
    with smtplib.SMTP(oauth_smtp_servers.host, oauth_smtp_servers.plain_port, timeout=5) as client:
        client.ehlo()
        token = oauth_server.issue_token("someone-else@example.test")

        def answer(challenge=None):
            return xoauth2(user, token).decode() if challenge is None else ""

        with pytest.raises(smtplib.SMTPAuthenticationError) as refusal:
            client.auth("XOAUTH2", answer)
        assert refusal.value.smtp_code == 535
