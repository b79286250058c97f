"""The load test: `scripts/serve-production` (gunicorn, 2 workers, production settings) on
loopback, driven by wrk with a logged-in session.

The session cookie is a credential: it travels to wrk in a Lua script (mode 600, removed
afterwards), never on a command line. The script also counts every response outside
2xx (wrk's own "Non-2xx or 3xx" line lets redirects through) and reports the latency
percentiles in a form that is easy to read back.
"""

import http.client
import os
import re
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

from tests.fixtures.mailservers import free_port

ROOT = Path(__file__).resolve().parent.parent

LUA = """\
wrk.headers["Cookie"] = {cookie}
local threads = {{}}
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  non2xx = 0
end
function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end
function done(summary, latency, requests)
  local count = 0
  for _, thread in ipairs(threads) do
    count = count + thread:get("non2xx")
  end
  local e = summary.errors
  io.write(string.format("BENCH requests=%d duration_us=%d non2xx=%d p50_us=%d p99_us=%d "
    .. "connect=%d read=%d write=%d timeout=%d status=%d\\n",
    summary.requests, summary.duration, count, latency:percentile(50), latency:percentile(99),
    e.connect, e.read, e.write, e.timeout, e.status))
end
"""


@dataclass
class LoadResult:
    label: str
    path: str
    requests: int
    seconds: float
    non2xx: int
    p50: float  # seconds
    p99: float
    socket_errors: int

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


@contextmanager
def production_server(python: str, env: dict[str, str], log_path: Path, workers: int = 2):
    """scripts/serve-production on a free loopback port; yields the base address."""
    port = free_port()
    address = f"127.0.0.1:{port}"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(  # noqa: S603 (our own script, arguments we built)
            ["scripts/serve-production", python, address, str(workers)],  # noqa: S607
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_serving("127.0.0.1", port, proc, log_path)
            yield "127.0.0.1", port
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _wait_until_serving(host: str, port: int, proc: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"scripts/serve-production stopped (exit {proc.returncode}); see {log_path}")
        try:
            status, _headers, _body = _request(host, port, "GET", "/accounts/login/")
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"gunicorn did not answer within 180 s; see {log_path}")


def _request(host, port, method, path, *, body=None, headers=None):
    connection = http.client.HTTPConnection(host, port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def _cookies(headers) -> dict[str, str]:
    jar = SimpleCookie()
    for name, value in headers:
        if name.lower() == "set-cookie":
            jar.load(value)
    return {name: morsel.value for name, morsel in jar.items()}


def log_in(host: str, port: int, username: str, password: str) -> str:
    """Log in through the login form; the Cookie header value of the session."""
    status, headers, body = _request(host, port, "GET", "/accounts/login/")
    cookies = _cookies(headers)
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', body)
    if status != 200 or "csrftoken" not in cookies or not match:
        raise RuntimeError(f"the login form did not load (HTTP {status}).")
    form = urlencode({"csrfmiddlewaretoken": match.group(1), "username": username, "password": password})
    status, headers, _body = _request(
        host,
        port,
        "POST",
        "/accounts/login/",
        body=form,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={cookies['csrftoken']}",
        },
    )
    session = _cookies(headers).get("sessionid")
    if status != 302 or not session:
        raise RuntimeError(f"logging in through the form failed (HTTP {status}).")
    return f"sessionid={session}; csrftoken={cookies['csrftoken']}"


def check_page(host: str, port: int, path: str, cookie: str) -> None:
    status, _headers, _body = _request(host, port, "GET", path, headers={"Cookie": cookie})
    if status != 200:
        raise RuntimeError(f"GET {path} with the session answered HTTP {status}, not 200.")


def run_wrk(
    host: str, port: int, label: str, path: str, cookie: str, *, seconds: int, connections: int, threads: int
) -> LoadResult:
    fd, script = tempfile.mkstemp(prefix="bench-wrk-", suffix=".lua")  # mode 600
    try:
        with os.fdopen(fd, "w") as file:
            file.write(LUA.format(cookie=_lua_string(cookie)))
        completed = subprocess.run(  # noqa: S603 (arguments we built; no secret among them)
            [  # noqa: S607 (Debian's wrk, from PATH)
                "wrk",
                f"--threads={threads}",
                f"--connections={connections}",
                f"--duration={seconds}s",
                "--timeout=10s",
                f"--script={script}",
                f"http://{host}:{port}{path}",
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=False,
        )
    finally:
        os.unlink(script)
    match = re.search(r"^BENCH (.*)$", completed.stdout, re.MULTILINE)
    if completed.returncode != 0 or not match:
        raise RuntimeError(f"wrk failed (exit {completed.returncode}): {completed.stderr.strip()[:500]}")
    values = {key: int(value) for key, value in (pair.split("=") for pair in match.group(1).split())}
    return LoadResult(
        label=label,
        path=path,
        requests=values["requests"],
        seconds=values["duration_us"] / 1e6,
        non2xx=values["non2xx"],
        p50=values["p50_us"] / 1e6,
        p99=values["p99_us"] / 1e6,
        socket_errors=values["connect"] + values["read"] + values["write"] + values["timeout"],
    )


def _lua_string(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9=;._\- ]+", text):
        raise ValueError("unexpected characters in the session cookie")
    return f'"{text}"'
