"""Servers, disks and EIPs of the sandbox: their wire shapes, and the effects that destroy data.

Deleting a disk here deletes its files on local disk and all of its EVS snapshots (R22), exactly
the consequence teardown exists to guard against; CBR backups are separate copies and survive.
An EIP bound to a server shows in the server's ``addresses`` as a ``floating`` address on the
port it is bound to, only while it is bound (the ``eips`` table is the one truth for both).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from teardown.sandbox.http import ApiError
from teardown.sandbox.store import parse_ts, ts

SSH_PORT_TAG = "sandbox.ssh_port"
"""Server tag: the port of the server's SSH server on 127.0.0.1."""
DATA_TAG = "sandbox.data"
"""Server tag: the absolute local paths of the server's disks, separated by ``;``."""

LOCK_SOURCE_ORDER = "ORDER"
"""``metadata.lockSource`` of a lock held by an order ("order lock (ORDER)"; then
``lockSourceId`` is the order id): the only source the ECS reference documents."""
TO_PERIOD_LOCK = "TO_PERIOD_LOCK"
"""``metadata.lockScene`` of a pay-per-use server being converted to yearly/monthly
("pay-per-use to yearly/monthly (TO_PERIOD_LOCK)"): the only scene the ECS reference documents."""
SANDBOX_VPC = "vpc-sandbox"
"""The one VPC of the sandbox: the key of every server's ``addresses`` and its ``vpc_id``."""
IMAGE_NAME = "Ubuntu 22.04 server 64bit"
"""``metadata.image_name`` of every sandbox server (sandbox data)."""
_TASK_STATES = {"deleteServers": "deleting", "stopServers": "powering-off"}
"""``OS-EXT-STS:task_state`` while an ECS job of this type works on a server (the ECS reference,
"云服务器状态", table 3: ``deleting`` "实例处于删除中", ``powering-off`` "实例处于停止中")."""
_OPEN_JOB = ("INIT", "RUNNING")
INIT_SECONDS = 0.5
"""An ECS or EVS job shows ``INIT`` this long at most (and never more than a quarter of its
duration) before ``RUNNING``."""

SERVER_DETAIL_KEYS = (
    "fault", "id", "name", "addresses", "flavor", "accessIPv4", "accessIPv6", "status", "image",
    "updated", "created", "metadata", "tags", "description", "locked", "config_drive",
    "tenant_id", "os-extended-volumes:volumes_attached", "OS-EXT-STS:task_state",
    "OS-EXT-STS:power_state", "OS-EXT-STS:vm_state", "OS-DCF:diskConfig",
    "OS-EXT-AZ:availability_zone", "OS-EXT-SRV-ATTR:root_device_name", "enterprise_project_id",
    "OS-SRV-USG:launched_at", "host_status", "OS-EXT-SRV-ATTR:hostname", "sys_tags",
    "security_groups", "progress",
)  # fmt: skip
"""The fields of a sandbox ServerDetail, in the order of the reference's example (a stub for
an id that does not exist has them all, ``null`` but ``id`` and ``fault``)."""


def api_time(stored: str | None) -> str | None:
    """A stored time (``YYYY-MM-DDTHH:MM:SSZ``) as EVS and CBR show theirs: UTC with no zone and
    microseconds, ``2019-05-10T07:59:12.084695`` (EVS: "UTC YYYY-MM-DDTHH:MM:SS.XXXXXX";
    the CBR examples)."""
    if not stored:
        return None
    return parse_ts(stored).strftime("%Y-%m-%dT%H:%M:%S.%f")


def server_row(conn: sqlite3.Connection, server_id: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM servers WHERE id=? AND deleted=0", (server_id,)).fetchone()
    if row is None:
        raise ApiError(404, "Ecs.0114", f"Instance[{server_id}] could not be found.")
    return row  # type: ignore[no-any-return]


def volume_row(conn: sqlite3.Connection, volume_id: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM volumes WHERE id=? AND deleted=0", (volume_id,)).fetchone()
    if row is None:
        raise ApiError(404, "EVS.5404", f"volume {volume_id} could not be found")
    return row  # type: ignore[no-any-return]


def server_volumes(conn: sqlite3.Connection, server_id: str) -> list[sqlite3.Row]:
    return list(
        conn.execute(
            "SELECT * FROM volumes WHERE server_id=? AND deleted=0 ORDER BY bootable DESC, device",
            (server_id,),
        )
    )


def server_port(server_id: str) -> str:
    """The id of a server's (only) port: its fixed address, and any EIP bound to it, are on it."""
    return "port-" + server_id[:8]


def server_eips(conn: sqlite3.Connection, server_id: str) -> list[sqlite3.Row]:
    """The live EIPs bound to ``server_id``."""
    return list(
        conn.execute(
            "SELECT * FROM eips WHERE server_id=? AND deleted=0 ORDER BY created, id", (server_id,)
        )
    )


def eip_row(conn: sqlite3.Connection, eip_id: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM eips WHERE id=? AND deleted=0", (eip_id,)).fetchone()
    if row is None:
        raise ApiError(404, "VPC.0504", "Floating IP could not be found.")
    return row  # type: ignore[no-any-return]


def eip_json(row: sqlite3.Row, project_id: str, region: str) -> dict[str, Any]:
    """A ``PublicipShowResp`` as the EIP API (v2) returns it. ``port_id`` and
    ``private_ip_address`` only while bound; ``profile`` only on a yearly/monthly EIP (the API
    reference: a non-empty profile means a yearly/monthly one)."""
    out: dict[str, Any] = {
        "id": row["id"],
        "status": row["status"],
        "type": "5_bgp",
        "public_ip_address": row["public_ip"],
        "tenant_id": project_id,
        "create_time": row["created"].replace("T", " ").rstrip("Z"),
        "bandwidth_id": row["bandwidth_id"],
        "bandwidth_name": row["bandwidth_name"],
        "bandwidth_share_type": "PER",
        "bandwidth_size": row["bandwidth_size"],
        "enterprise_project_id": "0",
        "ip_version": 4,
    }
    if row["alias"]:
        out["alias"] = row["alias"]
    if row["server_id"]:
        out["port_id"] = row["port_id"]
        out["private_ip_address"] = row["private_ip"]
    if row["order_id"]:
        out["profile"] = {
            "order_id": row["order_id"],
            "product_id": row["product_id"] or "",
            "region_id": region,
            "user_id": project_id,
        }
    return out


def unbind_eip(conn: sqlite3.Connection, eip_id: str, now: datetime) -> None:
    """The EIP stays, unbound (``DOWN``), and keeps billing."""
    conn.execute(
        "UPDATE eips SET server_id=NULL, port_id=NULL, private_ip=NULL, status='DOWN', updated=? "
        "WHERE id=? AND deleted=0",
        (ts(now), eip_id),
    )


def release_eip(conn: sqlite3.Connection, eip_id: str, now: datetime) -> None:
    """The EIP is gone (released, or unsubscribed and released): it no longer bills."""
    conn.execute(
        "UPDATE eips SET deleted=1, status='DELETED', server_id=NULL, port_id=NULL, "
        "private_ip=NULL, updated=? WHERE id=?",
        (ts(now), eip_id),
    )


def _release_server_eips(
    conn: sqlite3.Connection, server_id: str, now: datetime, delete_publicip: bool | None
) -> None:
    """What deleting a server does to the EIPs bound to it (ECS DeleteServers): ``true``
    releases a pay-per-use EIP, ``false`` only unbinds it, unset follows the EIP's own
    ``delete_on_termination``. A yearly/monthly EIP is only unbound (an assumption: the
    reference says nothing of them here, and DeletePublicip refuses them)."""
    for eip in server_eips(conn, server_id):
        release = delete_publicip if delete_publicip is not None else eip["delete_on_termination"]
        if release and eip["charging_mode"] == "postPaid" and not eip["order_id"]:
            release_eip(conn, eip["id"], now)
        else:
            unbind_eip(conn, eip["id"], now)


def _data_dir(data_root: Path, volume_id: str) -> Path:
    return data_root / "disks" / volume_id


def server_tags(conn: sqlite3.Connection, row: sqlite3.Row, data_root: Path) -> list[str]:
    tags: list[str] = json.loads(row["tags"])
    dirs = [str(_data_dir(data_root, v["id"])) for v in server_volumes(conn, row["id"])]
    return [*tags, f"{SSH_PORT_TAG}={row['ssh_port']}", f"{DATA_TAG}={';'.join(dirs)}"]


def server_task_state(conn: sqlite3.Connection, server_id: str) -> str | None:
    """``OS-EXT-STS:task_state``: ``deleting`` while a delete job works on the server,
    ``powering-off`` while a stop job does, else None (the reference's ``null``)."""
    for job in conn.execute(
        "SELECT job_type, entities FROM jobs WHERE service='ecs' AND status IN (?, ?) "
        "ORDER BY begin_time DESC, id",
        _OPEN_JOB,
    ):
        subs = json.loads(job["entities"]).get("sub_jobs", [])
        if any(
            s.get("entities", {}).get("server_id") == server_id and s.get("status") in _OPEN_JOB
            for s in subs
        ):
            return _TASK_STATES.get(job["job_type"])
    return None


_FLAVOR_SIZES = {"small": 1, "medium": 1, "large": 2, "xlarge": 4}


def flavor_json(flavor: str) -> dict[str, str]:
    """ServerDetail ``flavor``: ``id``, ``name``, ``disk`` (``"0"``), ``vcpus`` and ``ram`` (MB),
    all strings (the reference's table 2). vCPUs and memory follow the name ``family.size.ratio``
    (``s6.large.2``: 2 vCPUs, 2 GB per vCPU; ``Nxlarge`` is 4N vCPUs): sandbox data."""
    parts = flavor.split(".")
    size = parts[1] if len(parts) >= 2 else ""
    vcpus = _FLAVOR_SIZES.get(size, 1)
    if size.endswith("xlarge") and size[:-6].isdigit():
        vcpus = 4 * int(size[:-6])
    ratio = int(parts[2]) if len(parts) >= 3 and parts[2].isdigit() else 1
    return {
        "disk": "0",
        "vcpus": str(vcpus),
        "ram": str(vcpus * ratio * 1024),
        "id": flavor,
        "name": flavor,
    }


def server_metadata(row: sqlite3.Row) -> dict[str, str]:
    """ServerDetail ``metadata``: the system keys of the reference's table 6. The four lock keys
    are there on a prepaid server (empty when it is not locked, as in the reference's example)
    and on a locked one: ``lockSource`` ``ORDER``, ``lockSourceId`` the order holding the lock,
    ``lockScene`` (``TO_PERIOD_LOCK``), ``lockCheckEndpoint`` (empty: the sandbox has no
    callback)."""
    metadata: dict[str, str] = {
        "metering.image_id": row["image_id"],
        "metering.imagetype": "gold",
        "metering.resourcespeccode": f"{row['flavor']}.linux",
        "metering.resourcetype": "1",
        "image_name": IMAGE_NAME,
        "os_bit": "64",
        "vpc_id": SANDBOX_VPC,
        "os_type": "Linux",
        "charging_mode": row["charging_mode"],
    }
    if row["order_id"]:
        metadata["metering.order_id"] = row["order_id"]
        metadata["metering.product_id"] = row["product_id"] or ""
    if row["frozen"]:
        metadata["EcmResStatus"] = "freeze"
    if row["locked"] or row["order_id"]:
        locked = bool(row["locked"])
        metadata["lockCheckEndpoint"] = ""
        metadata["lockSource"] = LOCK_SOURCE_ORDER if locked else ""
        metadata["lockSourceId"] = (row["lock_source_id"] or "") if locked else ""
        metadata["lockScene"] = (row["lock_scene"] or TO_PERIOD_LOCK) if locked else ""
    return metadata


def server_stub(server_id: str, now: datetime) -> dict[str, Any]:
    """What ListServersDetails returns for a ``server_id`` that does not exist: "除了id和fault其它
    字段均为null" (the reference). The fault's content is an assumption (the reference does not
    show one): code 404 and the message of ``Ecs.0114``."""
    stub: dict[str, Any] = dict.fromkeys(SERVER_DETAIL_KEYS)
    stub["id"] = server_id
    stub["fault"] = {
        "code": 404,
        "message": f"Instance[{server_id}] could not be found.",
        "details": None,
        "created": ts(now),
    }
    return stub


def server_json(
    conn: sqlite3.Connection, row: sqlite3.Row, data_root: Path, tenant_id: str = ""
) -> dict[str, Any]:
    """A ServerDetail as ECS returns it: the fields teardown reads and the usual companions, in
    the order of the reference's example (``SERVER_DETAIL_KEYS``)."""
    volumes = server_volumes(conn, row["id"])
    addresses: list[dict[str, Any]] = []
    if row["private_ip"]:
        addresses.append(
            {
                "version": "4",
                "addr": row["private_ip"],
                "primary": True,
                "OS-EXT-IPS:type": "fixed",
                "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01",
                "OS-EXT-IPS:port_id": server_port(row["id"]),
            }
        )
    for eip in server_eips(conn, row["id"]):
        addresses.append(
            {
                "version": "4",
                "addr": eip["public_ip"],
                "OS-EXT-IPS:type": "floating",
                "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:01",
                "OS-EXT-IPS:port_id": eip["port_id"],
            }
        )
    active = row["status"] == "ACTIVE"
    return {
        "fault": None,
        "id": row["id"],
        "name": row["name"],
        "addresses": {SANDBOX_VPC: addresses},
        "flavor": flavor_json(row["flavor"]),
        "accessIPv4": "",
        "accessIPv6": "",
        "status": row["status"],
        "image": {"id": row["image_id"]},
        "updated": row["updated"],
        "created": row["created"],
        "metadata": server_metadata(row),
        "tags": server_tags(conn, row, data_root),
        "description": "",
        "locked": bool(row["locked"]),
        "config_drive": "",
        "tenant_id": tenant_id,
        "os-extended-volumes:volumes_attached": [
            {
                "device": v["device"],
                "bootIndex": "0" if v["bootable"] else "-1",
                "id": v["id"],
                "delete_on_termination": "true" if v["bootable"] else "false",
            }
            for v in volumes
        ],
        "OS-EXT-STS:task_state": server_task_state(conn, row["id"]),
        "OS-EXT-STS:power_state": 1 if active else 4,
        "OS-EXT-STS:vm_state": "active" if active else "stopped",
        "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": row["az"],
        "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
        "enterprise_project_id": "0",
        "OS-SRV-USG:launched_at": api_time(row["created"]),
        "host_status": "UP",
        "OS-EXT-SRV-ATTR:hostname": row["name"],
        "sys_tags": [{"key": "_sys_enterprise_project_id", "value": "0"}],
        "security_groups": [{"id": "sg-" + SANDBOX_VPC, "name": "default"}],
        "progress": 0,
    }


def volume_json(row: sqlite3.Row, data_root: Path) -> dict[str, Any]:
    """A VolumeDetail as EVS returns it."""
    metadata: dict[str, Any] = {}
    if row["order_id"]:
        # Only yearly/monthly disks have an order; the scenario leaves a bound disk's own
        # ``charging_mode`` at its DiskSpec default even when its prepaid server's order covers it.
        metadata["orderID"] = row["order_id"]
    attachments = []
    if row["server_id"]:
        attachments.append(
            {
                "server_id": row["server_id"],
                "volume_id": row["id"],
                "device": row["device"],
                "attachment_id": "att-" + row["id"][:8],
                "id": row["id"],
                "attached_at": api_time(row["created"]),
                "host_name": None,
            }
        )
    return {
        "id": row["id"],
        "name": row["name"],
        "status": row["status"],
        "size": row["size"],
        "bootable": "true" if row["bootable"] else "false",
        "multiattach": False,
        "availability_zone": row["az"],
        "volume_type": row["volume_type"],
        "attachments": attachments,
        "metadata": metadata,
        "created_at": api_time(row["created"]),
        "updated_at": api_time(row["updated"]),
        "tags": json.loads(row["tags"]),
        "service_type": "EVS",
        "encrypted": False,
    }


def volume_data_dir(data_root: Path, volume_id: str) -> Path:
    """Where a disk's files live on local disk."""
    return _data_dir(data_root, volume_id)


def delete_volume(conn: sqlite3.Connection, volume_id: str, now: datetime, data_root: Path) -> None:
    """Delete a disk: its files and every EVS snapshot of it go too (R22)."""
    conn.execute(
        "UPDATE volumes SET deleted=1, status='deleted', server_id=NULL, updated=? WHERE id=?",
        (ts(now), volume_id),
    )
    conn.execute("DELETE FROM snapshots WHERE volume_id=?", (volume_id,))
    shutil.rmtree(_data_dir(data_root, volume_id), ignore_errors=True)


def detach_volume(conn: sqlite3.Connection, volume_id: str, now: datetime) -> None:
    conn.execute(
        "UPDATE volumes SET server_id=NULL, device=NULL, status='available', updated=? WHERE id=?",
        (ts(now), volume_id),
    )


def remove_server(
    conn: sqlite3.Connection,
    server_id: str,
    now: datetime,
    data_root: Path,
    *,
    delete_data_volumes: bool,
    delete_publicip: bool | None = False,
) -> None:
    """The server goes; its system disk always, its data disks only when asked (else detached);
    its EIPs are released or unbound as ``delete_publicip`` says (see ``_release_server_eips``)."""
    for v in server_volumes(conn, server_id):
        if v["bootable"] or delete_data_volumes:
            delete_volume(conn, v["id"], now, data_root)
        else:
            detach_volume(conn, v["id"], now)
    _release_server_eips(conn, server_id, now, delete_publicip)
    conn.execute(
        "UPDATE servers SET deleted=1, status='DELETED', updated=? WHERE id=?",
        (ts(now), server_id),
    )


def release_server(
    conn: sqlite3.Connection, server_id: str, now: datetime, data_root: Path
) -> None:
    """Release an unsubscribed prepaid server: it and its bound disks go; separately bought
    attached disks are detached and keep billing (R17), and so are its EIPs: unbound, they keep
    billing (an assumption: an EIP is a resource of its own, like a separately bought disk)."""
    for v in server_volumes(conn, server_id):
        if v["bootable"] or v["bound"]:
            delete_volume(conn, v["id"], now, data_root)
        else:
            detach_volume(conn, v["id"], now)
    for eip in server_eips(conn, server_id):
        unbind_eip(conn, eip["id"], now)
    conn.execute(
        "UPDATE servers SET deleted=1, status='DELETED', updated=? WHERE id=?",
        (ts(now), server_id),
    )


def age_hours(created: str, now: datetime) -> float:
    return (now - parse_ts(created)).total_seconds() / 3600
