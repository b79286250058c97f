"""Where raw email messages are kept is set from the environment (README
"Configuration"): EMAIL_STORAGE_BACKEND and EMAIL_STORAGE_OPTIONS."""

import runpy
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.files.base import ContentFile
from django.utils.module_loading import import_string

SETTINGS_FILE = Path(__file__).resolve().parents[1] / "settings.py"


def emails_storage(values: dict):
    config = values["STORAGES"]["emails"]
    return import_string(config["BACKEND"])(**config["OPTIONS"])


def test_by_default_messages_are_files_under_var_emails(monkeypatch):
    monkeypatch.delenv("EMAIL_STORAGE_BACKEND", raising=False)
    monkeypatch.delenv("EMAIL_STORAGE_OPTIONS", raising=False)

    values = runpy.run_path(str(SETTINGS_FILE))

    assert values["STORAGES"]["emails"] == {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": values["BASE_DIR"] / "var" / "emails"},
    }


def test_the_options_move_the_messages_where_they_say(monkeypatch, tmp_path):
    monkeypatch.setenv("EMAIL_STORAGE_OPTIONS", f'{{"location": "{tmp_path / "mail"}"}}')

    storage = emails_storage(runpy.run_path(str(SETTINGS_FILE)))
    name = storage.save("2026/12/raw.eml", ContentFile(b"Subject: hello\r\n\r\nbody\r\n"))

    assert (tmp_path / "mail" / name).read_bytes() == b"Subject: hello\r\n\r\nbody\r\n"


def test_another_backend_is_named_with_its_options(monkeypatch):
    monkeypatch.setenv("EMAIL_STORAGE_BACKEND", "storages.backends.s3.S3Storage")
    monkeypatch.setenv(
        "EMAIL_STORAGE_OPTIONS", '{"bucket_name": "mail", "endpoint_url": "https://s3.example.test"}'
    )

    values = runpy.run_path(str(SETTINGS_FILE))

    assert values["STORAGES"]["emails"] == {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {"bucket_name": "mail", "endpoint_url": "https://s3.example.test"},
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("{location: x}", r"^EMAIL_STORAGE_OPTIONS: not JSON"),
        ('["x"]', r"^EMAIL_STORAGE_OPTIONS: must be a JSON object"),
    ],
)
def test_options_that_are_not_a_json_object_stop_the_start_naming_the_setting(monkeypatch, value, message):
    monkeypatch.setenv("EMAIL_STORAGE_OPTIONS", value)

    with pytest.raises(ImproperlyConfigured, match=message):
        runpy.run_path(str(SETTINGS_FILE))
