"""The webhook summary (teardown.support.notify) against a real HTTP server on 127.0.0.1: the
body and content type it sends, how statuses and failures become errors, ``${env:NAME}`` in the
URL, and that no error message ever shows the URL (a webhook URL is a secret)."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from teardown.core.errors import ConfigError, PermanentError, TransientError
from teardown.support.notify import post_summary

SECRET = "T0000SECRET/B1111SECRET/xoxSECRETtoken"


@dataclass
class Received:
    method: str
    path: str
    content_type: str
    body: bytes


@dataclass
class Hook:
    """A webhook listener: ``/status/<code>/...`` answers that status (the reason phrase echoes
    the request path, as a careless server might), ``/drop/...`` closes the connection without
    answering, anything else answers 200 ``ok``."""

    base: str
    received: list[Received] = field(default_factory=list)


def _handler(hook_received: list[Received]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            hook_received.append(
                Received(
                    "POST", self.path, self.headers.get("Content-Type", ""), self.rfile.read(length)
                )
            )
            parts = self.path.strip("/").split("/")
            if parts[0] == "drop":
                self.close_connection = True
                return
            status = int(parts[1]) if parts[0] == "status" else 200
            self.send_response(status, f"Nope {self.path}")
            body = f"no route {self.path}".encode() if status >= 300 else b"ok"
            if 300 <= status < 400:
                self.send_header("Location", f"/elsewhere{self.path}")
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def hook(monkeypatch: pytest.MonkeyPatch) -> Iterator[Hook]:
    # urllib honours proxy variables; the listener is local.
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    received: list[Received] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(received))
    server.daemon_threads = True
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield Hook(f"http://127.0.0.1:{server.server_port}", received)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _hidden(error: BaseException, *texts: str) -> None:
    message = str(error)
    for text in texts:
        assert text not in message, f"{text!r} shows in the error: {message}"
    assert "SECRET" not in message, message


def test_the_summary_is_posted_as_json_text(hook: Hook) -> None:
    text = "sweep 3 scopes: 2 completed, 1 blocked\n• ci-17 — refused ✓"
    post_summary(f"{hook.base}/services/{SECRET}", text, env={})
    [got] = hook.received
    assert got.method == "POST"
    assert got.path == f"/services/{SECRET}"
    assert got.content_type == "application/json"
    assert json.loads(got.body) == {"text": text}


def test_env_references_in_the_url_are_resolved_from_the_given_mapping(hook: Hook) -> None:
    post_summary("${env:HOOK}", "hello", env={"HOOK": f"{hook.base}/services/{SECRET}"})
    post_summary(f"{hook.base}/services/${{env:PART}}", "again", env={"PART": "abc"})
    assert [r.path for r in hook.received] == [f"/services/{SECRET}", "/services/abc"]
    assert [json.loads(r.body)["text"] for r in hook.received] == ["hello", "again"]


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_a_server_error_or_throttling_is_transient(hook: Hook, status: int) -> None:
    url = f"{hook.base}/status/{status}/{SECRET}"
    with pytest.raises(TransientError) as caught:
        post_summary(url, "x", env={})
    assert f"HTTP {status}" in str(caught.value)
    assert caught.value.code == str(status)
    _hidden(caught.value, url, hook.base, "127.0.0.1", "/status/")


@pytest.mark.parametrize("status", [404, 400, 403, 410])
def test_another_client_error_is_permanent(hook: Hook, status: int) -> None:
    url = f"{hook.base}/status/{status}/{SECRET}"
    with pytest.raises(PermanentError) as caught:
        post_summary(url, "x", env={})
    assert f"HTTP {status}" in str(caught.value)
    _hidden(caught.value, url, hook.base, "127.0.0.1", "/status/")


def test_a_redirect_is_not_followed_and_is_permanent(hook: Hook) -> None:
    url = f"{hook.base}/status/302/{SECRET}"
    with pytest.raises(PermanentError) as caught:
        post_summary(url, "x", env={})
    assert "HTTP 302" in str(caught.value)
    assert "redirect" in str(caught.value)
    assert [r.path for r in hook.received] == [f"/status/302/{SECRET}"]  # no second request
    _hidden(caught.value, url, hook.base, "/elsewhere")


def test_a_dropped_connection_is_transient_and_hides_the_url(hook: Hook) -> None:
    url = f"{hook.base}/drop/{SECRET}"
    with pytest.raises(TransientError) as caught:
        post_summary("${env:HOOK}", "x", env={"HOOK": url})
    assert "no response" in str(caught.value)
    _hidden(caught.value, url, hook.base, "127.0.0.1")


def test_a_refused_connection_is_transient_and_hides_the_url(hook: Hook) -> None:
    # A port nothing listens on: take one from the listener, then close it.
    closed = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = closed.server_port
    closed.server_close()
    url = f"http://127.0.0.1:{port}/services/{SECRET}"
    with pytest.raises(TransientError) as caught:
        post_summary(url, "x", env={})
    _hidden(caught.value, url, f"127.0.0.1:{port}", str(port))


@pytest.mark.parametrize(
    "failure",
    [
        TimeoutError("timed out"),
        ConnectionResetError(104, "Connection reset by peer"),
        OSError(f"cannot reach hooks.example.test/services/{SECRET}"),
    ],
)
def test_an_injected_post_that_gets_no_response_is_transient(failure: OSError) -> None:
    url = f"https://hooks.example.test/services/{SECRET}"

    def post(request: urllib.request.Request, timeout: float) -> int:
        assert request.full_url == url
        assert timeout == 2.5
        raise failure

    with pytest.raises(TransientError) as caught:
        post_summary(url, "x", env={}, timeout=2.5, post=post)
    _hidden(caught.value, url, "hooks.example.test", f"/services/{SECRET}")


def test_an_injected_post_sees_the_request_and_its_status_decides() -> None:
    sent: list[urllib.request.Request] = []

    def post(request: urllib.request.Request, timeout: float) -> int:
        sent.append(request)
        return 204

    post_summary("${env:HOOK}", "done", env={"HOOK": "https://hooks.example.test/x"}, post=post)
    [request] = sent
    assert request.get_method() == "POST"
    assert request.get_header("Content-type") == "application/json"
    assert isinstance(request.data, bytes)
    assert json.loads(request.data) == {"text": "done"}
    with pytest.raises(PermanentError, match="HTTP 401"):
        post_summary("https://hooks.example.test/x", "x", env={}, post=lambda r, t: 401)
    with pytest.raises(TransientError, match="HTTP 503"):
        post_summary("https://hooks.example.test/x", "x", env={}, post=lambda r, t: 503)


@pytest.mark.parametrize("env", [{}, {"HOOK": ""}, {"HOOK": "  "}, {"OTHER": "x"}])
def test_a_missing_variable_is_a_config_error_naming_it_not_the_url(env: dict[str, str]) -> None:
    url = f"https://hooks.example.test/services/{SECRET}/${{env:HOOK}}"
    with pytest.raises(ConfigError) as caught:
        post_summary(url, "x", env=env, post=lambda r, t: pytest.fail("nothing is sent"))
    assert "${env:HOOK}" in str(caught.value)
    assert "not set" in str(caught.value)
    _hidden(caught.value, url, "hooks.example.test", "/services/")


@pytest.mark.parametrize(
    "value",
    [
        f"ftp://hooks.example.test/{SECRET}",
        f"hooks.example.test/services/{SECRET}",
        f"file:///tmp/{SECRET}",
        f"https:///{SECRET}",
        f"https://hooks.example.test:port{SECRET}/x",
        f"https://hooks.example.test/services/{SECRET} extra",
        f"https://hooks.example.test/services/{SECRET}\nX-Injected: 1",
        "",
    ],
)
def test_a_url_that_is_not_http_is_a_config_error_that_hides_it(value: str) -> None:
    for url, env in ((value, {}), ("${env:HOOK}", {"HOOK": value})):
        if not value and url == "${env:HOOK}":
            continue  # an empty variable is "not set" (above)
        with pytest.raises(ConfigError) as caught:
            post_summary(url, "x", env=env, post=lambda r, t: pytest.fail("nothing is sent"))
        assert str(caught.value).startswith("notify URL: ")
        _hidden(caught.value, value or "\x00", "hooks.example.test", "/tmp/")


def test_a_malformed_env_reference_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not a"):
        post_summary("${env:bad-name}", "x", env={"bad-name": "https://h.example.test/"})
