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

    def answer_in_turn(self, method: str, pattern: str, bodies: list[Body]) -> None:
        """Answer ``method`` on ``pattern`` with ``bodies`` one after the other, one per request
        (the last one again once they run out): a job that moves on between polls."""
        remaining = list(bodies)

        def answer(_request: Request) -> Body:
            return remaining.pop(0) if len(remaining) > 1 else remaining[0]

        self.routes[(method, pattern)] = answer

    def sent(self, method: str, pattern: str) -> list[tuple[str, Body]]:
        """The requests made with ``method`` to paths matching ``pattern`` (a regex), in order:
        each one's path with its query string (if any), and its JSON body (``{}`` without one)."""
        return [
            (path.removesuffix("?"), body)
            for m, path, body in self.requests
            if m == method and re.fullmatch(pattern, path.split("?", 1)[0])
        ]


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
    endpoints = {s: base for s in ("ecs", "evs", "cbr", "bss", "eip")}
    rec.profile = HuaweiProfile(
        "cn-north-4", PROJECT, "recorded-domain", "AK", "SK", endpoints=endpoints
    )
    try:
        yield rec
    finally:
        server.shutdown()
        thread.join()
