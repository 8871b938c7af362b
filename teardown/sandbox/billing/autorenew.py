"""Auto-renew (CancelAutoRenewalResources, AutoRenewalResources): turning it off or on; and the
"switch to pay-per-use at expiry" policy (UpdatePeriodToOnDemand, SET_UP or CANCEL).

Charges are not simulated; :func:`teardown.sandbox.billing.queries.still_billing` reports when the
next one would be taken (R25).

Assumptions for UpdatePeriodToOnDemand (docs/huawei-api.md, "BSS"): SET_UP turns auto-renew off
(``expire_policy`` holds one policy); CANCEL puts ``expire_policy`` back to 0 (grace period, the
policy of a resource without auto-renew), and on a resource not set to pay-per-use changes
nothing and succeeds; an id that is not a main resource is refused with ``CBC.0100``; the batch
is refused as a whole by the first id refused with an HTTP 400 code, while ``CBC.99003610``
(grace or retention period) is reported per id in ``error_details`` with HTTP 200, as the
reference lists it.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime

from teardown.adapters.huawei.rules import (
    EXPIRE_POLICIES,
    TO_PAY_PER_USE_POLICY,
    expire_policy_code,
)
from teardown.sandbox.billing.queries import (
    children_of,
    current_status,
    orders_holding,
    subscription_row,
)
from teardown.sandbox.billing.schema import (
    CLOSED,
    EXPIRED,
    FROZEN,
    IN_USE,
    NOT_FOUND_CODE,
    PROCESSING,
    VM_TYPE,
)
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


GRACE_OR_RETENTION_CODE = "CBC.99003610"
"""UpdatePeriodToOnDemand: a resource in its grace or retention period cannot switch (HTTP 200,
in ``error_details``)."""
IN_PROGRESS_CODE = "CBC.99003623"
FROZEN_CODE = "CBC.99003624"


def set_to_pay_per_use(
    conn: sqlite3.Connection, resource_ids: list[str], on: bool, now: datetime
) -> list[dict[str, str]]:
    """SET_UP (``on``) or CANCEL "switch to pay-per-use at expiry" on main resources and their
    bound children. Returns the ``error_details`` of ids left unchanged (HTTP 200); raises the
    ApiError of the first id refused outright (see the module docstring)."""
    rows = []
    for rid in resource_ids:
        row = subscription_row(conn, rid)
        if row is None or row["status"] == CLOSED:
            raise ApiError(400, NOT_FOUND_CODE, f"resource {rid} does not exist")
        if not row["is_main"]:
            raise ApiError(
                400,
                "CBC.0100",
                f"{rid} is bound to {row['parent_resource_id']}: only main resource ids",
            )
        family = {rid, *(c["resource_id"] for c in children_of(conn, rid))}
        if orders_holding(conn, family, PROCESSING):
            raise ApiError(400, IN_PROGRESS_CODE, f"{rid}: another transaction is in progress")
        frozen = conn.execute("SELECT frozen FROM servers WHERE id=?", (rid,)).fetchone()
        if "frozen" in json.loads(row["blockers"]) or (frozen is not None and frozen[0]):
            raise ApiError(400, FROZEN_CODE, f"{rid} is frozen: it cannot switch to pay-per-use")
        rows.append((row, family))
    errors: list[dict[str, str]] = []
    grace = EXPIRE_POLICIES["grace"]
    for row, family in rows:
        rid = row["resource_id"]
        if current_status(row, now) in (EXPIRED, FROZEN):
            errors.append(
                {
                    "error_code": GRACE_OR_RETENTION_CODE,
                    "error_msg": f"{rid} is in its grace or retention period",
                    "id": rid,
                }
            )
            continue
        if not on and row["expire_policy"] != TO_PAY_PER_USE_POLICY:
            continue  # nothing to cancel
        for member in sorted(family):
            conn.execute(
                "UPDATE subscriptions SET auto_renew=0, expire_policy=?, auto_renew_times=NULL, "
                "renew_period_type=NULL, update_time=? WHERE resource_id=?",
                (TO_PAY_PER_USE_POLICY if on else grace, ts(now), member),
            )
    return errors
