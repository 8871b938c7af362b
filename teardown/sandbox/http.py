"""The sandbox's HTTP layer (Werkzeug): routing, SDK-HMAC-SHA256 authentication, Huawei-style
errors, fault injection, and one SQLite transaction per request.

Each service (ECS, EVS, CBR, BSS, EIP) has its own listener, because ECS and EVS share the
path of ``ShowJob``. Handlers register with ``@route(service, method, path)`` and return
``(status, json_body)``; they raise ``ApiError`` for Huawei-style errors, which roll back the
transaction, so a refused request changes nothing.
"""

from __future__ import annotations

import hmac
import json
import sqlite3
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from teardown.ports import Clock
from teardown.sandbox.config import SandboxConfig, decide
from teardown.sandbox.store import Store, advance, dumps

Reply = tuple[int, Any]
Handler = Callable[..., Reply]

SERVICES = ("ecs", "evs", "cbr", "bss", "eip")
GLOBAL_SERVICES = frozenset({"bss"})
"""Services called with GlobalCredentials (X-Domain-Id); the others are regional (X-Project-Id)."""

_BAD_BODY_CODE = {
    "ecs": "Ecs.0005",
    "evs": "EVS.1001",
    "cbr": "BackupService.9900",  # 参数校验失败, parameter validation failed (CBR error table)
    "bss": "CBC.0100",
    "eip": "VPC.0501",
}


class ApiError(Exception):
    """A Huawei-style error response."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(f"{status} {code}: {message}")


@dataclass(frozen=True)
class _Route:
    service: str
    method: str
    path: str
    operation: str
    handler: Handler


_ROUTES: list[_Route] = []


def route(service: str, method: str, path: str, operation: str) -> Callable[[Handler], Handler]:
    """Register ``handler(ctx, **path_args) -> (status, body)`` for ``method path`` of a service.

    ``path`` uses Werkzeug converters, e.g. ``/v1/<project_id>/cloudservers/<server_id>``;
    ``operation`` is the Huawei operation name (``ListServersDetails``), used for faults and logs.
    """

    def register(fn: Handler) -> Handler:
        _ROUTES.append(_Route(service, method, path, operation, fn))
        return fn

    return register


@dataclass
class Ctx:
    """What a handler gets: the request, the open transaction, the time, the sandbox."""

    request: Request
    conn: sqlite3.Connection
    now: datetime
    sandbox: SandboxApp
    service: str

    def body(self) -> dict[str, Any]:
        """The JSON object body, or a 400 with the service's invalid-body code."""
        raw = self.request.get_data(cache=True)
        try:
            data = json.loads(raw or b"{}")
        except (ValueError, UnicodeDecodeError):
            raise ApiError(
                400, _BAD_BODY_CODE[self.service], "request body is not valid JSON"
            ) from None
        if not isinstance(data, dict):
            raise ApiError(400, _BAD_BODY_CODE[self.service], "request body must be an object")
        return data

    def bad(self, message: str) -> ApiError:
        """A 400 with the service's invalid-parameter code."""
        return ApiError(400, _BAD_BODY_CODE[self.service], message)

    def query(self, name: str) -> str | None:
        return self.request.args.get(name)

    def page(self, default_limit: int, max_limit: int) -> tuple[int, int]:
        """``(offset, limit)`` from the query, both validated (offset counts items from 0)."""
        limit = self.query_int("limit", default_limit)
        offset = self.query_int("offset", 0)
        if not 1 <= limit <= max_limit or offset < 0:
            raise self.bad(f"limit must be 1..{max_limit} and offset at least 0")
        return offset, limit

    def query_int(self, name: str, default: int) -> int:
        value = self.request.args.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise self.bad(f"query parameter {name} must be an integer") from None


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot serialise {type(value).__name__}")


@dataclass
class SandboxApp:
    """The sandbox's API: one WSGI application per service over one store."""

    store: Store
    config: SandboxConfig
    clock: Clock
    data_dir: Path
    sleep: Callable[[float], None] = field(default=lambda _s: None)
    _counts_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._maps = {
            s: Map(
                [
                    Rule(r.path, methods=[r.method], endpoint=r, strict_slashes=False)
                    for r in _ROUTES
                    if r.service == s
                ]
            )
            for s in SERVICES
        }

    def wsgi(self, service: str) -> Callable[..., Any]:
        """The WSGI application serving ``service``."""

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            request = Request(environ)
            response = self.handle(service, request)
            return response(environ, start_response)

        return app

    # -- one request ---------------------------------------------------------------------

    def handle(self, service: str, request: Request) -> Response:
        request_id = uuid.uuid4().hex
        operation = "unknown"
        try:
            self._authenticate(service, request)
            try:
                rule, args = self._maps[service].bind_to_environ(request.environ).match()
            except NotFound:
                raise ApiError(
                    404, "APIGW.0101", "the API does not exist or has not been published"
                ) from None
            except MethodNotAllowed:
                raise ApiError(405, "APIGW.0101", "method not allowed for this API") from None
            assert isinstance(rule, _Route)
            operation = f"{service}.{rule.operation}"
            self._inject_faults(operation)
            kwargs = {k: v for k, v in args.items() if k not in ("project_id", "domain_id")}
            status, body = self._run(service, request, rule, kwargs)
        except ApiError as e:
            status, body = e.status, self._error_body(service, e, request_id)
        except Exception as e:  # a sandbox bug: still answer like the service would
            err = ApiError(500, "SYS.0500", f"internal error: {type(e).__name__}: {e}")
            status, body = err.status, self._error_body(service, err, request_id)
        self._log(service, operation, status)
        payload = b"" if body is None else json.dumps(body, default=_json_default).encode()
        headers = {"X-Request-Id": request_id}
        if body is not None:
            headers["Content-Type"] = "application/json;charset=UTF-8"
        return Response(payload, status=status, headers=headers)

    def _run(self, service: str, request: Request, rule: _Route, args: dict[str, Any]) -> Reply:
        path_project = request.path.split("/")[2] if service not in GLOBAL_SERVICES else None
        if path_project is not None and path_project != self.config.account.project_id:
            raise ApiError(404, "APIGW.0101", f"project {path_project} not found")
        now = self.clock.now()
        with self.store.tx() as conn:
            advance(conn, now)
            return rule.handler(Ctx(request, conn, now, self, service), **args)

    def _error_body(self, service: str, e: ApiError, request_id: str) -> dict[str, Any]:
        if service == "bss" or e.code.startswith("APIGW"):
            return {"error_code": e.code, "error_msg": e.message, "request_id": request_id}
        if service == "eip":  # the EIP API's own error body (its error-code page): no wrapper
            return {"code": e.code, "message": e.message}
        return {"error": {"code": e.code, "message": e.message}, "request_id": request_id}

    def _log(self, service: str, operation: str, status: int) -> None:
        with self.store.tx() as conn:
            conn.execute(
                "INSERT INTO calls(at, service, operation, status) VALUES (?, ?, ?, ?)",
                (self.clock.now().isoformat(), service, operation, status),
            )

    # -- faults --------------------------------------------------------------------------

    def _inject_faults(self, operation: str) -> None:
        cfg = self.config
        with self._counts_lock, self.store.tx() as conn:
            key = f"calls:{operation}"
            row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
            n = int(row[0]) + 1 if row else 1
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, str(n)))
        delay = cfg.latency(operation)
        if delay > 0:
            self.sleep(delay)
        if decide(cfg.faults.seed, "throttle:" + operation, n, cfg.throttle_rate(operation)):
            raise ApiError(429, "APIGW.0308", "the throttling threshold has been reached")
        if decide(cfg.faults.seed, "error:" + operation, n, cfg.error_rate(operation)):
            raise ApiError(500, "SYS.0500", "internal error (injected)")

    # -- authentication ------------------------------------------------------------------

    def _authenticate(self, service: str, request: Request) -> None:
        """Recompute the SDK-HMAC-SHA256 signature with the sandbox's secret key and compare."""
        account = self.config.account
        auth = request.headers.get("Authorization", "")
        fail = ApiError(
            401,
            "APIGW.0301",
            "Incorrect IAM authentication information: verify aksk signature fail",
        )
        if not auth.startswith("SDK-HMAC-SHA256 "):
            raise fail
        parts = dict(
            p.strip().split("=", 1) for p in auth[len("SDK-HMAC-SHA256 ") :].split(",") if "=" in p
        )
        if parts.get("Access") != account.ak:
            raise fail
        signed = [h for h in parts.get("SignedHeaders", "").split(";") if h]
        if "x-sdk-date" not in signed:
            raise fail
        try:
            sent = datetime.strptime(request.headers.get("X-Sdk-Date", ""), "%Y%m%dT%H%M%SZ")
        except ValueError:
            raise fail from None
        limit = self.config.max_request_skew_seconds
        skew = abs((self.clock.now().replace(tzinfo=None) - sent).total_seconds())
        if limit is not None and skew > limit:
            raise ApiError(
                401,
                "APIGW.0303",
                "Incorrect IAM authentication information: the request time differs from "
                f"the server's by {skew:.0f} s (more than {limit:.0f} s)",
            )
        headers = {h: request.headers.get(h, "") for h in signed}
        id_header = "x-domain-id" if service in GLOBAL_SERVICES else "x-project-id"
        expected_id = account.domain_id if service in GLOBAL_SERVICES else account.project_id
        if headers.get(id_header) != expected_id:
            raise fail
        raw_path = str(request.environ.get("RAW_URI") or request.environ.get("PATH_INFO") or "/")
        sdk = SdkRequest(
            method=request.method,
            resource_path=unquote(raw_path.split("?", 1)[0]),
            query_params=parse_qsl(request.query_string.decode(), keep_blank_values=True),
            header_params=headers,
            body=request.get_data(cache=True) or "",
        )
        try:
            Signer(BasicCredentials(account.ak, account.sk)).sign(sdk)
        except ValueError:
            raise fail from None
        got = parts.get("Signature", "")
        want = sdk.header_params["Authorization"].rsplit("Signature=", 1)[-1]
        if not hmac.compare_digest(got, want):
            raise fail


def paged(items: list[Any], offset: int, limit: int) -> list[Any]:
    """Slice ``items`` by a 0-based offset and a limit (both validated by the caller)."""
    return items[offset : offset + limit]


__all__ = ["ApiError", "Ctx", "SandboxApp", "dumps", "paged", "route"]
