"""SPEC 7: access tokens from a real token endpoint (the suite's loopback token server)."""

import json
import logging
import threading
import time

import pytest

from serverprofiles import oauth
from serverprofiles.connectors.outcomes import Cause, Outcome
from serverprofiles.oauth import JWT_BEARER_GRANT, TokenRequest, access_token, token_run


@pytest.fixture(autouse=True)
def empty_cache():
    oauth.cache_clear()
    yield
    oauth.cache_clear()


def client_credentials(server, **fields) -> TokenRequest:
    values = {
        "profile_id": 1,
        "token_url": server.token_url,
        "client_id": server.client_id,
        "scope": "https://outlook.office365.com/.default",
        "secret": server.client_secret,
        "timeout": 5.0,
    }
    values.update(fields)
    return TokenRequest(**values)


def test_client_credentials_grant_gives_an_app_only_token(oauth_server):
    token = access_token(client_credentials(oauth_server))

    assert isinstance(token, str)
    assert oauth_server.token_allows(token, "anyone@example.test")


def test_wrong_client_secret_is_refused_with_the_endpoints_error_quoted(oauth_server, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "Wrong-Client-Secret-9931"

    outcome = access_token(client_credentials(oauth_server, secret=wrong))

    assert isinstance(outcome, Outcome) and outcome.cause == Cause.TOKEN_REFUSED
    assert outcome.message.startswith("Token endpoint refused the client: ")
    assert "invalid_client" in outcome.message
    assert "AADSTS7000215: Invalid client secret" in outcome.message
    assert wrong not in outcome.message and oauth_server.client_secret not in outcome.message
    assert all(wrong not in record.getMessage() for record in caplog.records)


def test_the_secret_is_removed_from_a_quoted_error_description(oauth_server):
    # The test server names the client ID in its refusal: a "client ID" that is the secret
    # itself (a pasting mistake) must not come back on the page.
    secret = "Pasted-Secret-As-Client-Id-7"
    outcome = access_token(client_credentials(oauth_server, client_id=secret, secret=secret))

    assert outcome.cause == Cause.TOKEN_REFUSED
    assert secret not in outcome.message and "[redacted]" in outcome.message


def test_token_endpoint_port_closed_is_connection_refused(closed_port):
    outcome = access_token(
        client_credentials_for(f"http://127.0.0.1:{closed_port}/token", secret="irrelevant-secret")
    )

    assert outcome.cause == Cause.CONNECTION_REFUSED
    assert (
        f"the token endpoint http://127.0.0.1:{closed_port}/token refused the connection" in outcome.message
    )


def client_credentials_for(url: str, **fields) -> TokenRequest:
    return TokenRequest(profile_id=1, token_url=url, client_id="app", scope="s", timeout=2.0, **fields)


def test_token_endpoint_host_that_does_not_resolve(db):
    outcome = access_token(client_credentials_for("https://token.invalid/token", secret="x-secret"))

    assert outcome.cause == Cause.HOST_NOT_FOUND
    assert "token.invalid (the token endpoint) does not resolve" in outcome.message


def test_token_endpoint_outside_the_outbound_policy_is_not_contacted(oauth_server, settings):
    settings.MAIL_ALLOWED_NETWORKS = []

    outcome = access_token(client_credentials(oauth_server))

    assert outcome.cause == Cause.DESTINATION_NOT_ALLOWED
    assert oauth_server.requests["/token"] == 0


def test_token_endpoint_that_never_answers_times_out():
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection, never answers
    try:
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/token"
        started = time.monotonic()
        outcome = access_token(
            TokenRequest(
                profile_id=1, token_url=url, client_id="a", scope="s", secret="x-secret", timeout=0.3
            )
        )
    finally:
        listener.close()

    assert outcome.cause == Cause.TIMED_OUT
    assert "did not answer within 300 ms" in outcome.message
    assert time.monotonic() - started < 3


def test_tls_to_a_plain_http_endpoint_fails_the_handshake(oauth_server):
    url = oauth_server.token_url.replace("http://", "https://")

    outcome = access_token(client_credentials(oauth_server, token_url=url))

    assert outcome.cause == Cause.TLS_HANDSHAKE_FAILED
    assert "the token endpoint" in outcome.message


def test_plain_http_to_a_name_that_is_not_loopback_is_refused_before_sending(oauth_server):
    outcome = access_token(client_credentials_for("http://token.example.test/token", secret="x-secret"))

    assert outcome.cause == Cause.SERVER_ERROR
    assert "Token URL must start with https://" in outcome.message


def test_a_cached_token_is_used_until_shortly_before_it_expires(oauth_server):
    request = client_credentials(oauth_server)

    first = access_token(request)
    again = access_token(request)

    assert first == again
    assert oauth_server.requests["/token"] == 1


def test_an_expired_cached_token_is_replaced_by_a_new_one(oauth_server):
    oauth_server.token_lifetime = oauth.TOKEN_LEEWAY  # expires within the leeway: stale at once
    request = client_credentials(oauth_server)

    first = access_token(request)
    second = access_token(request)

    assert first != second
    assert oauth_server.requests["/token"] == 2


def test_a_changed_secret_asks_again(oauth_server):
    access_token(client_credentials(oauth_server))
    outcome = access_token(client_credentials(oauth_server, secret="Changed-Secret-1"))

    assert outcome.cause == Cause.TOKEN_REFUSED
    assert oauth_server.requests["/token"] == 2


def test_thirty_concurrent_callers_share_one_token_request(oauth_server):
    request = client_credentials(oauth_server)
    tokens = []
    threads = [threading.Thread(target=lambda: tokens.append(access_token(request))) for _ in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(tokens)) == 1
    assert oauth_server.requests["/token"] == 1


def test_within_a_run_a_refusal_is_asked_for_once(oauth_server):
    request = client_credentials(oauth_server, secret="Wrong-Client-Secret-1")
    with token_run():
        outcomes = [access_token(request) for _ in range(30)]

    assert {outcome.cause for outcome in outcomes} == {Cause.TOKEN_REFUSED}
    assert oauth_server.requests["/token"] == 1
    access_token(request)  # a new run asks again
    assert oauth_server.requests["/token"] == 2


def google(server, key: dict, subject: str) -> TokenRequest:
    return TokenRequest(
        profile_id=2,
        token_url=server.token_url,
        client_id=key["client_id"],
        scope="https://mail.google.com/",
        secret=json.dumps(key),
        subject=subject,
        timeout=5.0,
        grant=JWT_BEARER_GRANT,
    )


def test_google_jwt_bearer_grant_gives_a_token_for_the_mailbox(oauth_server):
    key = oauth_server.add_service_account()

    token = access_token(google(oauth_server, key, "alice@example.test"))

    assert isinstance(token, str)
    assert oauth_server.token_allows(token, "alice@example.test")
    assert not oauth_server.token_allows(token, "bob@example.test")


def test_google_tokens_are_cached_per_mailbox(oauth_server):
    key = oauth_server.add_service_account()

    alice = access_token(google(oauth_server, key, "alice@example.test"))
    bob = access_token(google(oauth_server, key, "bob@example.test"))
    access_token(google(oauth_server, key, "alice@example.test"))

    assert alice != bob
    assert oauth_server.requests["/token"] == 2


def test_google_key_of_an_unknown_service_account_is_refused(oauth_server):
    key = oauth_server.add_service_account()
    other = {**key, "client_email": "stranger@test-project.iam.example.test"}

    outcome = access_token(google(oauth_server, other, "alice@example.test"))

    assert outcome.cause == Cause.TOKEN_REFUSED
    assert "invalid_grant" in outcome.message and "Unknown service account" in outcome.message
    assert "PRIVATE KEY" not in outcome.message


def test_stale_tokens_are_forgotten_when_the_cache_is_full(oauth_server, monkeypatch):
    monkeypatch.setattr(oauth, "CACHE_PRUNE_AT", 3)
    oauth_server.token_lifetime = oauth.TOKEN_LEEWAY  # stale at once
    for profile_id in range(3):
        access_token(client_credentials(oauth_server, profile_id=profile_id))
    assert len(oauth._cache) == 3

    access_token(client_credentials(oauth_server, profile_id=99))

    assert len(oauth._cache) == 1
