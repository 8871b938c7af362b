"""Auto-renew (CancelAutoRenewalResources, AutoRenewalResources): turning it off or on.

Charges are not simulated; :func:`teardown.sandbox.billing.queries.still_billing` reports when the
next one would be taken (R25).
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from teardown.adapters.huawei.rules import expire_policy_code
from teardown.sandbox.billing.queries import children_of, current_status, subscription_row
from teardown.sandbox.billing.schema import CLOSED, FROZEN, IN_USE, NOT_FOUND_CODE, VM_TYPE
from teardown.sandbox.http import ApiError
from teardown.sandbox.store import ts


def set_auto_renew(
    conn: sqlite3.Connection,
    resource_id: str,
    on: bool,
    now: datetime,
    *,
    times: int | None = None,
    period_type: str | None = None,
) -> None:
    """Turn auto-renew on or off for a resource; on a server also for its bound children and
    the prepaid disks attached to it. Raises the documented errors (docs/huawei-api.md)."""
    row = subscription_row(conn, resource_id)
    if row is None or row["status"] == CLOSED:
        raise ApiError(400, NOT_FOUND_CODE, f"resource {resource_id} does not exist")
    if current_status(row, now) in (FROZEN, CLOSED):
        raise ApiError(
            400,
            "CBC.99003602",
            f"resource {resource_id} is expired or frozen: auto-renew cannot be changed",
        )
    if not on and not row["auto_renew"]:
        raise ApiError(
            400, "CBC.99003605", f"auto-renew of resource {resource_id} is already cancelled"
        )
    family = [resource_id, *(c["resource_id"] for c in children_of(conn, resource_id))]
    if row["resource_type_code"] == VM_TYPE and not on:
        attached = conn.execute(
            "SELECT s.resource_id FROM volumes v JOIN subscriptions s ON s.resource_id=v.id "
            "WHERE v.server_id=? AND v.deleted=0 AND s.is_main=1 AND s.status=?",
            (resource_id, IN_USE),
        )
        family += [a[0] for a in attached]
    for rid in family:
        conn.execute(
            "UPDATE subscriptions SET auto_renew=?, expire_policy=?, auto_renew_times=?, "
            "renew_period_type=?, update_time=? WHERE resource_id=?",
            (
                int(on),
                expire_policy_code(on),
                times if on else None,
                period_type if on else None,
                ts(now),
                rid,
            ),
        )
