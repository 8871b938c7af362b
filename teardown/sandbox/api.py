"""Serving the sandbox's API: one threaded Werkzeug server per service on 127.0.0.1."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

import teardown.sandbox.services  # noqa: F401  (registers the routes)
from teardown.sandbox.http import SERVICES, SandboxApp


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr (the store's ``calls`` table records every call)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@dataclass(frozen=True)
class Endpoints:
    """Base URLs of the services (``http://127.0.0.1:PORT``). ``eip`` (the EIP API, served on
    the VPC endpoint by Huawei) is empty only in values built by hand with the first four."""

    ecs: str
    evs: str
    cbr: str
    bss: str
    eip: str = ""

    def as_dict(self) -> dict[str, str]:
        urls = {"ecs": self.ecs, "evs": self.evs, "cbr": self.cbr, "bss": self.bss}
        if self.eip:
            urls["eip"] = self.eip
        return urls


class ApiServers:
    """Starts and stops one listener per service. Loopback only; port 0 picks free ports."""

    def __init__(self, app: SandboxApp, ports: dict[str, int] | None = None) -> None:
        self.app = app
        self._ports = ports or {}
        self._servers: list[BaseWSGIServer] = []
        self._threads: list[threading.Thread] = []

    def start(self) -> Endpoints:
        urls: dict[str, str] = {}
        for service in SERVICES:
            server = make_server(
                "127.0.0.1",
                self._ports.get(service, 0),
                self.app.wsgi(service),
                threaded=True,
                request_handler=_QuietHandler,
            )
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},  # stop() returns quickly
                name=f"sandbox-{service}",
                daemon=True,
            )
            thread.start()
            self._servers.append(server)
            self._threads.append(thread)
            urls[service] = f"http://127.0.0.1:{server.server_port}"
        return Endpoints(**urls)

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers.clear()
        self._threads.clear()

    def __enter__(self) -> Endpoints:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
