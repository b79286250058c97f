import logging

from mailboxadmin.logging import RedactSecretsFilter, redact


def test_password_assignments_are_redacted():
    assert "hunter2" not in redact("login failed password=hunter2 for alice")
    assert "hunter2" not in redact('{"password": "hunter2"}')


def test_fernet_tokens_and_auth_payloads_are_redacted():
    token = "gAAAAABpY2VfdG9rZW5fZXhhbXBsZV9mb3JfdGVzdHNfb25seQ=="
    assert token not in redact(f"stored {token}")
    assert "AGFsaWNlAGh1bnRlcjI=" not in redact("AUTH PLAIN AGFsaWNlAGh1bnRlcjI=")


def test_filter_rewrites_the_record_before_any_handler_sees_it(caplog):
    logger = logging.getLogger("mailboxadmin.test")
    logger.addFilter(RedactSecretsFilter())
    with caplog.at_level(logging.INFO, logger="mailboxadmin.test"):
        logger.info("connecting with password=%s", "hunter2")
    assert "hunter2" not in caplog.text
    assert "[redacted]" in caplog.text
