"""The HTTP transport of token requests (serverprofiles/oauth.py): the one method of a
requests session that authlib's OAuth2Client calls, over http.client.

A token endpoint is reached like a mail server (SPEC 9): its host resolved once by the
outbound policy, the connection made to the checked address (no second resolution), TLS
verified for the URL's host name against the system's trust store plus MAIL_CA_BUNDLE,
every read bounded by the profile's timeout and the whole answer by three of them and
MAX_RESPONSE_BYTES.
"""

import http.client
import json
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from django.conf import settings

from serverprofiles.connectors import outbound

MAX_RESPONSE_BYTES = 64 * 1024


class HTTPFailure(Exception):
    """The token endpoint answered an HTTP error without an OAuth error in JSON."""

    def __init__(self, status: int):
        self.status = status


def _tls_context() -> ssl.SSLContext:
    """The system trust store plus settings.MAIL_CA_BUNDLE, host names verified."""
    context = ssl.create_default_context()
    if bundle := getattr(settings, "MAIL_CA_BUNDLE", ""):
        context.load_verify_locations(cafile=bundle)
    return context


class _PinnedHTTPConnection(http.client.HTTPSConnection):
    """http.client over a socket the outbound policy connected (no second resolution);
    TLS verified for the URL's host name. Plain http only to a loopback address."""

    def __init__(self, host: str, port: int | None, *, timeout: float, tls: bool):
        super().__init__(
            host, port or (443 if tls else 80), timeout=timeout, context=_tls_context() if tls else None
        )
        self._tls = tls

    def connect(self):
        sock = outbound.connect(self.host, self.port, timeout=self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host) if self._tls else sock


@dataclass
class _Response:
    status_code: int
    body: bytes

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def raise_for_status(self):
        if self.status_code >= 400:
            raise HTTPFailure(self.status_code)


class PinnedSession:
    """The one method of a requests session that authlib's OAuth2Client calls."""

    def __init__(self, timeout: float):
        self.timeout = timeout

    def post(self, url, data=None, headers=None, auth=None, **_):
        parts = urlsplit(url)
        from serverprofiles.oauth import token_url_problem

        if problem := token_url_problem(url):
            raise ValueError(problem)
        body = urlencode(data or {})
        headers = dict(headers or {})
        if auth is not None:
            url, headers, body = auth.prepare("POST", url, headers, body)
        path = parts.path or "/"
        if parts.query:
            path += f"?{parts.query}"
        connection = _PinnedHTTPConnection(
            parts.hostname, parts.port, timeout=self.timeout, tls=parts.scheme == "https"
        )
        deadline = time.monotonic() + self.timeout * 3
        try:
            connection.request("POST", path, body=body.encode(), headers=headers)
            response = connection.getresponse()
            chunks, size = [], 0
            while chunk := response.read(8192):
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES or time.monotonic() > deadline:
                    raise HTTPFailure(response.status) if size > MAX_RESPONSE_BYTES else TimeoutError()
                chunks.append(chunk)
            return _Response(response.status, b"".join(chunks))
        finally:
            connection.close()
