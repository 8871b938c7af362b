"""THE translation point between the Huawei SDK and teardown's error tree.

Every SDK call in this package goes through :func:`call`::

    resp = call("ecs.ShowServer", lambda: clients.ecs.show_server(req), idempotent=True)

- HTTP 429 (recognised by the status: on GET the SDK may lose the body), any 5xx, timeouts and
  connection failures become :class:`TransientError`;
- any other 4xx becomes :class:`PermanentError` (:class:`NotFound` for 404), with the Huawei
  error code as ``code`` and, for codes we know, a hint naming the next step.

Reads (``idempotent=True``) are retried here on transient errors with a :class:`RetryPolicy`;
mutating calls are never retried here: the runner reconciles by asking the cloud before it
retries. Messages name the operation and the status, never credentials.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import requests
import urllib3
from huaweicloudsdkcore.exceptions.exceptions import (
    ApiTypeError,
    ApiValueError,
    ConnectionException,
    RequestTimeoutException,
    SdkException,
    ServerResponseException,
    ServiceResponseException,
)

from teardown.core.errors import AdapterError, PermanentError, TransientError
from teardown.support.retry import RetryPolicy

if TYPE_CHECKING:
    from teardown.adapters.huawei.clients import Clients

T = TypeVar("T")

DEFAULT_READ_RETRY = RetryPolicy(attempts=4, initial=0.5, maximum=5)
"""How reads are retried on transient errors (4 attempts, 0.5 s doubling up to 5 s, jittered)."""

HINTS: dict[str, str] = {
    "CBC.99003100": "the resource is in an order pending payment: cancel that order first",
    "CBC.99003651": (
        "a transaction on the resource is in progress (交易正在进行中): wait about 10 minutes "
        "and resume; if it persists, ask Huawei Cloud support. Nothing was unsubscribed"
    ),
    "CBC.99003654": (
        "a bandwidth add-on package exists: its renewal periods cannot be unsubscribed; cancel "
        "auto-renew instead, or unsubscribe the resource itself"
    ),
    "CBC.99006066": (
        "Huawei's billing service could not query the fee information: resume later; if it "
        "persists, ask Huawei Cloud support"
    ),
    "CBC.99000089": (
        "this order is part of a combined order: cancel the combined order (it lists this one "
        "in its sub_order_infos)"
    ),
    "CBC.0151": (
        "access denied: the credentials lack billing (BSS) permissions; use the account's own "
        "AK/SK or grant the IAM user the billing permissions"
    ),
    "CBC.0999": "Huawei's billing service failed (other error): resume later; if it persists, "
    "ask Huawei Cloud support",
    "CBC.99003656": (
        "the resource is frozen (arrears or a violation): settle the arrears to unfreeze it, or "
        "release it once it has expired"
    ),
    "CBC.99003643": (
        "the order has been invoiced and cannot be unsubscribed online: ask Huawei Cloud "
        "support, or keep it to expiry and cancel auto-renew"
    ),
    "CBC.99003649": "a trial resource cannot be unsubscribed: delete it or let the trial end",
    "CBC.99003650": "bought on KooGallery (marketplace): unsubscribe it through KooGallery",
    "CBC.99003128": (
        "there is no renewal period that has not yet taken effect: nothing to unsubscribe; "
        "cancel auto-renew to stop future renewals"
    ),
    "CBC.99005010": "the order's status does not allow cancelling: only orders pending payment",
    "CBC.99003185": "bound resources go together: unsubscribe the main resource instead",
    "Ecs.0114": "the server does not exist (already deleted?)",
    "APIGW.0301": "check the AK/SK and project id in the profile",
    "APIGW.0303": "this machine's clock is off: sync it (NTP) and try again",
    "Ecs.0513": "a yearly/monthly server cannot be deleted: unsubscribe it instead",
    "Ecs.0605": (
        "the server is locked: its metadata's lockSourceId names the order holding the lock "
        "(lockScene TO_PERIOD_LOCK: an order converting it to yearly/monthly, pending payment); "
        "pay or cancel that order, then run again"
    ),
    "Ecs.0501": "ECS failed to delete the server: run again later; if it persists, ask Huawei "
    "Cloud support",
    "Ecs.0603": "another operation is running on the server: run again in a minute",
}
"""Huawei error code -> what a person should do next."""

MAX_DETAIL = 300
"""Characters of the service's own message kept in ours."""


class NotFound(PermanentError):
    """HTTP 404: the resource (or job, or checkpoint) does not exist."""


def _detail(text: object) -> str:
    s = " ".join(str(text or "").split())
    return s if len(s) <= MAX_DETAIL else s[: MAX_DETAIL - 1] + "…"


def translate(operation: str, e: BaseException) -> AdapterError | None:
    """The teardown error for an SDK or transport exception, or None if ``e`` is not one."""
    if isinstance(e, ServiceResponseException):
        status = int(e.status_code or 0)
        code = str(e.error_code) if e.error_code else None
        message = f"{operation} failed: HTTP {status}"
        if code and code != str(status):
            message += f" {code}"
        detail = _detail(e.error_msg)
        if detail:
            message += f": {detail}"
        hint = HINTS.get(code or "")
        if status == 429:
            return TransientError(message, code=code, hint="throttled: retry later")
        if status >= 500 or isinstance(e, ServerResponseException):
            return TransientError(message, code=code, hint=hint)
        if status == 404:
            return NotFound(message, code=code, hint=hint)
        return PermanentError(message, code=code, hint=hint)
    if isinstance(e, RequestTimeoutException | requests.Timeout):
        return TransientError(f"{operation} timed out: {_detail(e)}")
    if isinstance(e, ConnectionException | requests.ConnectionError | urllib3.exceptions.HTTPError):
        return TransientError(f"{operation}: cannot connect: {_detail(e)}")
    if isinstance(e, ApiValueError | ApiTypeError):
        return PermanentError(f"{operation}: invalid request: {_detail(e)}")
    if isinstance(e, requests.RequestException | SdkException):
        return TransientError(f"{operation} failed: {_detail(e)}")
    return None


def call(
    operation: str,
    fn: Callable[[], T],
    *,
    idempotent: bool,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run one SDK call ``fn`` named ``operation`` (``service.Operation``); translate failures.

    With ``idempotent=True`` transient failures are retried by ``retry`` (default
    :data:`DEFAULT_READ_RETRY`) sleeping with ``sleep``; otherwise the first failure is raised.
    Raises only :class:`TransientError` or :class:`PermanentError` for SDK/transport failures.
    """

    def once() -> T:
        try:
            return fn()
        except (
            ServiceResponseException,
            SdkException,
            ApiValueError,
            ApiTypeError,
            requests.RequestException,
            urllib3.exceptions.HTTPError,
        ) as e:
            err = translate(operation, e)
            if err is None:  # pragma: no cover - translate covers every type caught above
                raise
            raise err from None

    if not idempotent:
        return once()
    policy = retry or DEFAULT_READ_RETRY
    return policy.retrying(sleep=sleep)(once)


class ApiCaller:
    """Base of every adapter class: the SDK clients, and :func:`call` bound to one retry policy
    and one sleep (injected by tests so that no test waits)."""

    def __init__(
        self,
        clients: Clients,
        *,
        sleep: Callable[[float], None] = time.sleep,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.clients = clients
        self._sleep = sleep
        self._retry = retry

    def _call(self, operation: str, fn: Callable[[], T], *, idempotent: bool = True) -> T:
        """``fn`` through :func:`call`; reads are retried, anything else is tried once."""
        return call(operation, fn, idempotent=idempotent, retry=self._retry, sleep=self._sleep)

    def _read(self, operation: str, fn: Callable[[], T]) -> T:
        return self._call(operation, fn, idempotent=True)


__all__ = ["DEFAULT_READ_RETRY", "HINTS", "ApiCaller", "NotFound", "call", "translate"]
