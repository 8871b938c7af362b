"""The adapter's inventory, destroy and job polling replayed over Huawei's documented response
examples (``tests/fixtures/recorded/``, sources and every change in its README.md), served over
HTTP to the official SDK clients. ECS, EVS and EIP ignore the filters they are sent (the adapter
must check what came back); BSS honours its filters except in the tests that say otherwise.

Each expected value names the example it comes from. "ECS list" is the ListServersDetails
example (``ecs_list_servers_details_billing.json``: the documented four servers, then the server
of the "query the EIP of a server" scenario page, called "ECS scenario"); "EVS" the attached
system disk of the EVS tag-query example, copied once per server; "EIP" the scenario page's EIP
followed by the EIP list page's two; "BSS" the BSS files, which are **not** copies of documented
examples (see the README: built from the SDK models, values made up).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from teardown.adapters.huawei.clients import Clients
from teardown.adapters.huawei.destroyer import HuaweiDestroyer
from teardown.adapters.huawei.inventory import (
    EIP_TYPE,
    SERVER_TYPE,
    HuaweiInventory,
    eip_urn,
    server_urn,
)
from teardown.core.billing import Payment
from teardown.core.errors import PermanentError
from teardown.core.model import (
    Address,
    Billing,
    BillingMode,
    DestroyAction,
    Disk,
    Kind,
    Resource,
)
from teardown.ports import DestroyResult, Presence
from tests.recorded import PROJECT, Body, Recorded, fixture, recorded_cloud

P = r"/v\d/[^/]+"
BSS_RESOURCES = "/v2/orders/suscriptions/resources/query"
BSS_ORDERS = "/v2/orders/customer-orders"
BSS_DETAILS = "/v2/orders/customer-orders/details/"

# ECS list, server 1 ("ecs-5e70", charging_mode "1", metering.order_id "CS1808132145NRVRE")
PREPAID = "b37fd80e-ac67-4d02-b9f1-9891c9c0fabf"
PREPAID_ORDER = "CS1808132145NRVRE"
PREPAID_DISK = "2edc879f-022e-4bd6-b079-95a27564d449"
# ECS scenario server ("ecs-test", charging_mode "0", a floating address)
WITH_EIP = "b8b1b475-d6c9-4733-a3db-c3a526407286"
WITH_EIP_DISK = "0dc13ef4-dcf6-49d2-8d34-395d94767917"
EIP_ID = "92597d39-b81d-42b0-8d02-fe8afe7ef076"
# BSS: the order pending payment
PENDING_ORDER = "CS2401081524XQZ7K"
# ECS DeleteServers example's job id (the ShowJob examples carry it too)
JOB = "ff80808288d415d80189901d8eb81cbb"
ACCOUNT = f"huawei:cn-north-4:{PROJECT}"


def utc(year: int, month: int, day: int, hour: int, minute: int, second: int) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def orders_by_filter(request: Any) -> Body:
    """ListCustomerOrders that honours ``status``, as documented."""
    body = copy.deepcopy(fixture("bss_list_customer_orders.json"))
    wanted = request.args.get("status")
    body["order_infos"] = [o for o in body["order_infos"] if str(o["status"]) == wanted]
    body["total_count"] = len(body["order_infos"])
    return body


def resources_by_filter(request: Any) -> Body:
    """ListPayPerUseCustomerResources that honours ``resource_ids`` (each id and its bound
    children, ``only_main_resource`` 0) and ``order_id``: the two BSS rows are what the
    purchase order ``CS1808132145NRVRE`` provisioned; an order pending payment provisioned
    nothing ("该接口只能查询开通成功的资源")."""
    body = copy.deepcopy(fixture("bss_list_pay_per_use_customer_resources.json"))
    asked = request.get_json()
    rows = body["data"]
    if asked.get("resource_ids"):
        ids = set(asked["resource_ids"])
        rows = [r for r in rows if r["resource_id"] in ids or r["parent_resource_id"] in ids]
    if asked.get("order_id"):
        rows = rows if asked["order_id"] == PREPAID_ORDER else []
    body["data"], body["total_count"] = rows, len(rows)
    return body


def answer_inventory(rec: Recorded, *, bss_filters: bool) -> None:
    """Every answer the inventory asks for. ECS, EVS and EIP ignore their filters (the adapter
    must check what comes back); BSS honours its own when ``bss_filters``."""
    rec.answer("GET", P + "/cloudservers/detail", fixture("ecs_list_servers_details_billing.json"))
    rec.answer("GET", P + "/cloudvolumes/detail", fixture("evs_list_volumes_attached.json"))
    rec.answer("GET", P + "/publicips", fixture("eip_list_publicips.json"))
    if bss_filters:
        rec.answer("POST", BSS_RESOURCES, resources_by_filter)
        rec.answer("GET", BSS_ORDERS, orders_by_filter)
    else:
        rec.answer("POST", BSS_RESOURCES, fixture("bss_list_pay_per_use_customer_resources.json"))
        rec.answer("GET", BSS_ORDERS, fixture("bss_list_customer_orders.json"))
    rec.answer("GET", BSS_DETAILS + PREPAID_ORDER, fixture("bss_show_customer_order_details.json"))
    rec.answer(
        "GET", BSS_DETAILS + PENDING_ORDER, fixture("bss_show_customer_order_details_pending.json")
    )


@pytest.fixture
def cloud() -> Iterator[Recorded]:
    """The documented answers; BSS honours its filters (ECS, EVS and EIP do not)."""
    with recorded_cloud() as rec:
        answer_inventory(rec, bss_filters=True)
        yield rec


@pytest.fixture
def careless() -> Iterator[Recorded]:
    """The same answers from services that all ignore their filters: ListCustomerOrders returns
    the completed purchase order with the pending one, ListPayPerUseCustomerResources the two
    rows whatever order is asked about."""
    with recorded_cloud() as rec:
        answer_inventory(rec, bss_filters=False)
        yield rec


def inventory(rec: Recorded) -> HuaweiInventory:
    return HuaweiInventory(Clients(rec.profile), sleep=lambda _s: None)


# -- 1. inventory --------------------------------------------------------------------------


def test_inventory_over_the_documented_examples(cloud: Recorded) -> None:
    found = inventory(cloud).resources(server_ids=[PREPAID, WITH_EIP])

    # ECS list also returned the three other documented servers (the server_id filter was
    # ignored): only the two asked for are in, in the order asked, the EIP after its server.
    assert [r.urn for r in found] == [
        server_urn(PREPAID),
        server_urn(WITH_EIP),
        eip_urn(EIP_ID),
    ]
    prepaid, with_eip, eip = found

    assert prepaid == Resource(
        urn="cloud:huawei:ecs:" + PREPAID,  # ECS list server 1 "id"
        type=SERVER_TYPE,
        kind=Kind.SERVER,
        name="ecs-5e70",  # ECS list server 1 "name"
        cloud_id=PREPAID,
        tags=(),  # ECS list server 1 "tags": []
        disks=(
            Disk(
                id=PREPAID_DISK,  # ECS list server 1 volumes_attached[0].id
                size_gb=40,  # EVS "size": 40
                system=True,  # ECS "bootIndex": "0"
                bound=True,  # a system disk always goes with its server
                device="/dev/sda",  # ECS "device" (EVS says "/dev/vda": ECS's is kept)
                delete_on_termination=False,  # ECS "delete_on_termination": "false"
            ),
        ),
        addresses=(
            Address(ip="192.168.0.206"),  # ECS list server 1, both "OS-EXT-IPS:type": "fixed"
            Address(ip="192.168.0.8"),
        ),
        billing=Billing(
            mode=BillingMode.PRE_PAID,  # ECS metadata "charging_mode": "1"
            order_id=PREPAID_ORDER,  # ECS metadata "metering.order_id"
            expires_at=utc(2018, 9, 13, 15, 59, 59),  # BSS data[0].expire_time
            auto_renew=True,  # BSS data[0].expire_policy 3
            # the pending order's line names a type code; BSS lists no resource of it
            pending_order_ids=(),
            locked=False,  # ECS "locked": false
            frozen=False,  # ECS metadata has no "EcmResStatus"
            lock_order_id=None,  # ECS metadata "lockSourceId": "" (and not locked)
            provisioned_at=utc(2018, 8, 13, 13, 46, 9),  # BSS data[0].effective_time
            payments=(
                Payment(
                    order_id=PREPAID_ORDER,
                    cash=Decimal("63.50"),  # BSS order_info.amount_after_discount 63.5
                    effective=utc(2018, 8, 13, 13, 46, 9),  # BSS line effective_time
                    expires=utc(2018, 9, 13, 15, 59, 59),  # BSS line expire_time
                    term_months=1,  # BSS line period_type 2 (month), period_num 1
                    flexi_coupon=Decimal("0.00"),  # BSS flexipurchase_coupon_amount 0.0
                    stored_card=Decimal("0.00"),  # BSS stored_card_amount 0.0
                    cash_coupon=Decimal("0.00"),  # BSS coupon_amount 0.0
                    discount_coupon=Decimal("10.00"),  # BSS discounts[0]: type "300", 10.0
                    promotion=False,  # no discount of type 200 or 700
                ),
            ),
            is_main=True,  # BSS data[0].is_main_resource 1
            children=(PREPAID_DISK,),  # BSS data[1].parent_resource_id is the server
            expire_policy=3,
            to_pay_per_use_at_expiry=False,  # expire_policy is not 1
        ),
        parent=None,
        account=ACCOUNT,
        created_at=utc(2018, 8, 13, 13, 46, 9),  # ECS "created": "2018-08-13T13:46:09Z"
        disks_known=True,  # ECS and EVS both name exactly the system disk
    )

    assert with_eip == Resource(
        urn="cloud:huawei:ecs:" + WITH_EIP,  # ECS scenario "id"
        type=SERVER_TYPE,
        kind=Kind.SERVER,
        name="ecs-test",  # ECS scenario "name"
        cloud_id=WITH_EIP,
        tags=(),  # ECS scenario "tags": []
        disks=(
            Disk(
                id=WITH_EIP_DISK,  # ECS scenario volumes_attached[0].id
                size_gb=40,  # EVS "size": 40
                system=True,  # "bootIndex": "0"
                bound=True,
                device="/dev/vda",  # ECS scenario "device"
                delete_on_termination=True,  # ECS scenario "delete_on_termination": "true"
            ),
        ),
        addresses=(
            Address(ip="192.168.0.16"),  # "OS-EXT-IPS:type": "fixed"
            Address(ip="121.xx.xx.64", public=True),  # "floating" (masked in the example)
        ),
        billing=Billing(mode=BillingMode.POST_PAID),  # "charging_mode": "0", no order
        account=ACCOUNT,
        created_at=utc(2021, 2, 18, 12, 37, 42),  # ECS scenario "created"
        disks_known=True,
    )

    assert eip == Resource(
        urn="cloud:huawei:eip:" + EIP_ID,  # EIP publicips[0].id
        type=EIP_TYPE,
        kind=Kind.ADDRESS,
        name="121.xx.xx.64",  # EIP "public_ip_address"
        cloud_id=EIP_ID,
        addresses=(Address(ip="121.xx.xx.64", public=True),),
        billing=Billing(mode=BillingMode.POST_PAID),  # EIP "profile": {} (no order: hourly)
        parent=server_urn(WITH_EIP),  # EIP "port_id" is the port of the floating address
        account=ACCOUNT,
        created_at=utc(2021, 2, 18, 12, 38, 8),  # EIP "create_time": "2021-02-18 12:38:08"
    )


def test_inventory_asks_bss_about_the_prepaid_server_only_and_eip_by_port(
    cloud: Recorded,
) -> None:
    inventory(cloud).resources(server_ids=[PREPAID, WITH_EIP])

    # BSS: the prepaid server alone (its bound children come with only_main_resource = 0)
    by_id = [b for _p, b in cloud.sent("POST", BSS_RESOURCES) if "resource_ids" in b]
    assert by_id == [
        {"resource_ids": [PREPAID], "only_main_resource": 0, "offset": 0, "limit": 100}
    ]
    # EIP: asked by the port of the floating address (ECS scenario "OS-EXT-IPS:port_id"); the
    # answer also held the EIP list page's two EIPs, on other ports: neither was attached
    (eips,) = cloud.sent("GET", P + "/publicips")
    assert "port_id=390b39b0-9a77-4ec2-ae1e-3af358f78999" in eips[0]


# -- 2. destroy and job polling ------------------------------------------------------------


def job(status: str) -> Body:
    """The documented ShowJob answer in ``status``: ``SUCCESS`` as documented; ``INIT`` or
    ``RUNNING`` (table 2 and 4) with the top job and its sub-job in that status and not ended."""
    body = copy.deepcopy(fixture("ecs_show_job.json"))
    if status != "SUCCESS":
        body["status"] = status
        body["end_time"] = None
        for sub in body["entities"]["sub_jobs"]:
            sub["status"] = status
            sub["end_time"] = None
    return body


def server_with_eip(rec: Recorded) -> Resource:
    (server,) = [
        r for r in inventory(rec).resources(server_ids=[WITH_EIP]) if r.kind is Kind.SERVER
    ]
    return server


@pytest.mark.parametrize("delete_volumes", [False, True])
def test_delete_polls_the_documented_job_until_success(
    cloud: Recorded, delete_volumes: bool
) -> None:
    cloud.answer("POST", P + "/cloudservers/delete", fixture("ecs_delete_servers.json"))
    cloud.answer_in_turn("GET", P + "/jobs/[^/]+", [job("INIT"), job("RUNNING"), job("SUCCESS")])
    slept: list[float] = []
    server = server_with_eip(cloud)

    result = HuaweiDestroyer(Clients(cloud.profile), sleep=slept.append).destroy(
        server, DestroyAction.DELETE, "k", delete_volumes=delete_volumes
    )

    assert result == DestroyResult(Presence.GONE, job_id=JOB)  # DeleteServers "job_id"
    assert cloud.sent("POST", P + "/cloudservers/delete") == [
        (
            f"/v1/{PROJECT}/cloudservers/delete",
            {
                "servers": [{"id": WITH_EIP}],
                "delete_volume": delete_volumes,
                "delete_publicip": False,  # the EIP is its own step, released after the server
            },
        )
    ]
    polls = cloud.sent("GET", P + "/jobs/[^/]+")
    assert [path for path, _b in polls] == [f"/v1/{PROJECT}/jobs/{JOB}"] * 3
    assert slept == [2.0, 2.0]  # INIT, RUNNING: one poll interval each, and no real wait


def test_a_failed_delete_job_raises_the_documented_sub_job_reason(cloud: Recorded) -> None:
    cloud.answer("POST", P + "/cloudservers/delete", fixture("ecs_delete_servers.json"))
    cloud.answer_in_turn("GET", P + "/jobs/[^/]+", [job("INIT"), fixture("ecs_show_job_fail.json")])
    slept: list[float] = []
    server = server_with_eip(cloud)

    with pytest.raises(PermanentError) as raised:
        HuaweiDestroyer(Clients(cloud.profile), sleep=slept.append).destroy(
            server, DestroyAction.DELETE, "k"
        )

    # ecs_show_job_fail.json: sub_jobs[0].fail_reason (the Ecs.0501 text of the ECS error codes)
    # (a hint for the code may follow, in parentheses: not this test's business)
    assert str(raised.value).startswith(
        f"deleting ecs-test failed (job {JOB}): "
        "Failed to delete the ECS. Try again later or contact customer service."
    )
    assert raised.value.code == "Ecs.0501"  # the job's "error_code"
    assert slept == [2.0]
    assert len(cloud.sent("POST", P + "/cloudservers/delete")) == 1  # never sent again


# -- 3. pending orders ---------------------------------------------------------------------


def test_pending_orders_over_the_order_examples(cloud: Recorded) -> None:
    (order,) = inventory(cloud).pending_orders()

    assert order.order_id == PENDING_ORDER  # BSS order_infos[1].order_id (status 6)
    assert order.amount == Decimal("738.00")  # BSS order_infos[1].amount_after_discount
    assert order.created == utc(2024, 1, 8, 7, 24, 10)  # BSS order_infos[1].create_time
    # BSS details order_info.pending_payment_end_time
    assert order.pay_by == utc(2024, 1, 15, 7, 24, 10)
    # The line's "commercial_resource" is "hws.resource.type.vm", a resource *type* code: it
    # must never be taken for the id of a resource the order touches; and the order provisioned
    # nothing yet, so ListPayPerUseCustomerResources(order_id=) names nothing either.
    assert order.resource_ids == ()
    assert order.regions == ()
    assert order.in_region is True  # no resource known: not ruled out of the region
    assert [p for p, _b in cloud.sent("GET", BSS_ORDERS)] == [
        f"{BSS_ORDERS}?limit=100&offset=0&status=6"
    ]
    asked = [b.get("order_id") for _p, b in cloud.sent("POST", BSS_RESOURCES)]
    assert asked == [PENDING_ORDER]


def test_an_order_the_answer_says_is_completed_is_not_pending() -> None:
    with recorded_cloud() as rec:
        answer_inventory(rec, bss_filters=True)
        rec.answer("GET", BSS_ORDERS, fixture("bss_list_customer_orders.json"))  # status ignored
        pending = inventory(rec).pending_orders()
    assert [o.order_id for o in pending] == [PENDING_ORDER]


@pytest.mark.xfail(
    strict=True,
    reason="ListPayPerUseCustomerResources' rows (OrderInstanceV2) carry no order id: the "
    "adapter keeps only rows whose service and resource type the order's own lines name (and "
    "their bound children), which catches rows of other types but not other servers of the "
    "same type when the order_id filter is ignored",
)
def test_resources_of_other_orders_are_not_taken_for_the_pending_orders() -> None:
    with recorded_cloud() as rec:
        answer_inventory(rec, bss_filters=True)
        rec.answer("POST", BSS_RESOURCES, fixture("bss_list_pay_per_use_customer_resources.json"))
        (order,) = inventory(rec).pending_orders()
    assert order.resource_ids == ()


@pytest.mark.xfail(
    strict=True,
    reason="with BSS ignoring status and order_id, the prepaid server is said to be touched by "
    "its own completed purchase order and by an unrelated pending order (the plan then cancels "
    "both first, or blocks the server's unsubscribe)",
)
def test_a_careless_bss_attaches_no_pending_order_to_the_prepaid_server(
    careless: Recorded,
) -> None:
    prepaid, _with_eip, _eip = inventory(careless).resources(server_ids=[PREPAID, WITH_EIP])
    assert prepaid.billing.pending_order_ids == ()
