"""Raw messages in an S3-compatible bucket, set by the environment alone (README
"Configuration": EMAIL_STORAGE_BACKEND, EMAIL_STORAGE_OPTIONS), through django-storages
and boto3 over HTTP to moto's S3 server, which the test starts on loopback. (moto stands
in for a bucket service: no S3-compatible server is among Debian's packages; it answers
the S3 protocol over HTTP, so the product's side is the real one.)"""

import json
import runpy
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from django.core.files.storage import storages

from mailboxes.models import Email
from mailboxes.services.emails import email_record, message_parse
from tests.fixtures.faults import wait_for_http
from tests.fixtures.mailservers import LOOPBACK, free_port

pytestmark = pytest.mark.django_db

SETTINGS_FILE = Path(__file__).resolve().parents[1] / "mailboxadmin" / "settings.py"
BUCKET = "mailboxadmin-emails"
RAW = (
    b"Subject: Invoice\r\nFrom: a@example.org\r\nTo: b@example.test\r\n"
    b"Message-ID: <s3@example.org>\r\n\r\nHi\r\n"
)


@pytest.fixture
def s3_endpoint(tmp_path, monkeypatch):
    # The keys boto3 reads from the environment (the test server accepts any).
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test-access-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret-key")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    port = free_port()
    log = tmp_path / "moto.log"
    with log.open("wb") as out:
        server = subprocess.Popen(  # noqa: S603 (this Python, moto's server module)
            [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)], stdout=out, stderr=out
        )
    endpoint = f"http://{LOOPBACK}:{port}"
    try:
        wait_for_http(endpoint, server, log, path="/")  # S3's ListBuckets
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_raw_messages_go_to_the_bucket_the_environment_names(s3_endpoint, monkeypatch, settings, make_user):
    monkeypatch.setenv("EMAIL_STORAGE_BACKEND", "storages.backends.s3.S3Storage")
    monkeypatch.setenv(
        "EMAIL_STORAGE_OPTIONS", json.dumps({"bucket_name": BUCKET, "endpoint_url": s3_endpoint})
    )
    configured = runpy.run_path(str(SETTINGS_FILE))["STORAGES"]["emails"]
    settings.STORAGES = {**settings.STORAGES, "emails": configured}
    # The field took its storage when the models were loaded, as a deployment's does at
    # its start: hand it the storage these settings make.
    monkeypatch.setattr(Email._meta.get_field("raw"), "storage", storages["emails"])
    mailbox = make_user().mailbox
    moment = datetime(2026, 12, 7, tzinfo=UTC)

    parsed = message_parse(RAW)
    first = email_record(mailbox, RAW, parsed, received_on=moment, size=len(RAW))
    again = email_record(mailbox, RAW + b"(resent)\r\n", parsed, received_on=moment, size=len(RAW))

    assert first is not None and again is None
    stored = boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(Bucket=BUCKET)
    # One object, the first: the duplicate neither replaced it nor stayed behind.
    assert [item["Key"] for item in stored["Contents"]] == [first.raw.name]
    assert Email.objects.get(mailbox=mailbox).raw.read() == RAW
