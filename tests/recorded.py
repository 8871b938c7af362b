"""A loopback HTTP server that answers the official SDK clients with recorded-shape bodies
(``tests/fixtures/recorded/``: Huawei's published response examples) and ignores every query
filter, as a careless or changed service might. Requests are recorded for the tests to read."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from teardown.adapters.huawei.profile import HuaweiProfile

FIXTURES = Path(__file__).parent / "fixtures" / "recorded"
PROJECT = "recorded-project"

Body = dict[str, Any]
Handler = Callable[[Request], Body]


def fixture(name: str) -> Body:
    data: Body = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return data


@dataclass
class Recorded:
    """The running server: its profile, the routes it answers, and what it was asked."""

    profile: HuaweiProfile
    routes: dict[tuple[str, str], Handler]
    requests: list[tuple[str, str, Body]] = field(default_factory=list)

    def answer(self, method: str, pattern: str, body: Body | Handler) -> None:
        """Answer ``method`` on paths matching ``pattern`` (a regex) with ``body``."""
        if callable(body):
            self.routes[(method, pattern)] = body
            return
        fixed = body

        def answer(_request: Request) -> Body:
            return fixed

        self.routes[(method, pattern)] = answer


@contextmanager
def recorded_cloud() -> Iterator[Recorded]:
    rec = Recorded(
        profile=HuaweiProfile("cn-north-4", PROJECT, "recorded-domain", "AK", "SK"), routes={}
    )

    @Request.application
    def app(request: Request) -> Response:
        payload = request.get_json(silent=True) or {}
        rec.requests.append((request.method, request.full_path, payload))
        for (method, pattern), handler in rec.routes.items():
            if method == request.method and re.fullmatch(pattern, request.path):
                return Response(json.dumps(handler(request)), 200, mimetype="application/json")
        return Response(
            json.dumps({"error_code": "Test.404", "error_msg": f"no route {request.path}"}),
            404,
            mimetype="application/json",
        )

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    endpoints = {s: base for s in ("ecs", "evs", "cbr", "bss")}
    rec.profile = HuaweiProfile(
        "cn-north-4", PROJECT, "recorded-domain", "AK", "SK", endpoints=endpoints
    )
    try:
        yield rec
    finally:
        server.shutdown()
        thread.join()
