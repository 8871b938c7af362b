"""A temporary test environment on Huawei Cloud whose servers and data disk are guarded by teardown.

What it builds (``pulumi_huaweicloud``): a VPC, a subnet, a security group with one SSH ingress
rule, a pay-per-use web server ``web-1`` and a prepaid (monthly, auto-renewed) database server
``db-1`` with a separately bought data disk attached to it. Every resource that holds data (the two
servers and the disk) is bound to teardown's delete hooks: a ``before_delete`` hook that backs the
resource up through teardown's engine and verifies the backup (it raises, which fails that delete,
when the backup cannot be made or verified) and an ``after_delete`` hook that closes the billing
(the unsubscribe of a prepaid server is read back, not assumed).

Destroying the stack: once any resource in the state carries a delete hook, a plain
``pulumi destroy`` refuses to start. The hooks are Python callbacks living in this program, and the
engine can only call them if the program runs during the destroy: use
``pulumi destroy --run-program`` (Automation API: ``stack.destroy(run_program=True)``), or let
teardown drive it (``teardown run --stack dev``), which does the same after its own plan and
confirmation.

Two rules follow from how the engine finds the hooks:

* The state stores only the hook *names*; on every run (``up``, ``destroy --run-program``,
  ``refresh --run-program``) the program must register a hook under each stored name again, or
  the delete fails with "resource hook not registered". So the hooks are created unconditionally,
  with stable names derived from the logical resource names (never from ids or outputs), and a
  resource's hooks must stay in the program for as long as the resource may still be in a state.
  Each guarded resource gets its own ``name`` prefix, so the names in the state say which
  resource a hook guards.
* Nothing that feeds ``teardown_hooks`` may depend on another resource's outputs
  (pulumi/pulumi#23921): after a failed destroy, ``destroy --run-program`` re-runs this program
  while some resources are already gone, and an ``apply`` on a deleted resource's output could leave
  the destroy unrunnable. Only static settings (paths, commands, names) from the stack config go in;
  the hooks learn which server or disk they guard from the hook arguments at run time.

Configuration (namespace ``test-env``, see ``Pulumi.dev.yaml.example``): ``webPaths``,
``dbPaths`` (JSON lists of absolute paths pulled from the servers before deletion), ``dbDump``
(the command run before the database pull), ``sshCidr``, ``availabilityZone``, ``imageId`` or
``imageName``, ``webFlavor``, ``dbFlavor``, ``dataDiskSize``. teardown's own settings are read by
the hooks at run time from the ``teardown`` namespace (``teardown:profile``, ``teardown:config``,
``teardown:journal``).
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_huaweicloud as huaweicloud

from teardown.pulumi import hook_tag, teardown_hooks

CONFIG_NAMESPACE = "test-env"

DEFAULT_WEB_PATHS = ["/var/www", "/etc/nginx"]
DEFAULT_DB_PATHS = ["/var/backups/mysql"]
DEFAULT_DB_DUMP = (
    "mkdir -p /var/backups/mysql && "
    "mysqldump --all-databases --single-transaction --routines --events "
    "> /var/backups/mysql/all-databases.sql"
)
DEFAULT_AZ = "cn-north-4a"
DEFAULT_IMAGE_NAME = "Ubuntu 22.04 server 64bit"
DEFAULT_WEB_FLAVOR = "s6.medium.2"
DEFAULT_DB_FLAVOR = "s6.large.2"
DEFAULT_DATA_DISK_GB = 100

VPC_CIDR = "192.168.0.0/16"
SUBNET_CIDR = "192.168.10.0/24"
SUBNET_GATEWAY = "192.168.10.1"

cfg = pulumi.Config(CONFIG_NAMESPACE)


def _string_list(key: str, default: list[str]) -> list[str]:
    """A JSON list of strings from the stack config (``default`` when unset)."""
    value: Any = cfg.get_object(key)
    if value is None:
        return list(default)
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise pulumi.ConfigTypeError(f"{CONFIG_NAMESPACE}:{key}", value, "a JSON list of strings")
    return list(value)


# --- static settings: the only inputs of the hooks ------------------------------------------
web_paths = _string_list("webPaths", DEFAULT_WEB_PATHS)
db_paths = _string_list("dbPaths", DEFAULT_DB_PATHS)
db_dump = cfg.get("dbDump") or DEFAULT_DB_DUMP

# --- other settings -------------------------------------------------------------------------
az = cfg.get("availabilityZone") or DEFAULT_AZ
image_id = cfg.get("imageId")
image_name = None if image_id else (cfg.get("imageName") or DEFAULT_IMAGE_NAME)
web_flavor = cfg.get("webFlavor") or DEFAULT_WEB_FLAVOR
db_flavor = cfg.get("dbFlavor") or DEFAULT_DB_FLAVOR
data_disk_gb = cfg.get_int("dataDiskSize") or DEFAULT_DATA_DISK_GB
# teardown pulls over SSH from inside the VPC (bastion or VPN) unless this is widened.
ssh_cidr = cfg.get("sshCidr") or VPC_CIDR

stack = pulumi.get_stack()
common_tags = {"env": "test", "stack": stack, "managed-by": "pulumi"}

# --- network --------------------------------------------------------------------------------
vpc = huaweicloud.vpc.Vpc("vpc", name=f"test-env-{stack}", cidr=VPC_CIDR, tags=common_tags)

subnet = huaweicloud.vpc.Subnet(
    "subnet",
    name=f"test-env-{stack}-subnet",
    vpc_id=vpc.id,
    cidr=SUBNET_CIDR,
    gateway_ip=SUBNET_GATEWAY,
    availability_zone=az,
    tags=common_tags,
)

secgroup = huaweicloud.vpc.Secgroup(
    "secgroup",
    name=f"test-env-{stack}-sg",
    description="test environment: SSH for administration and teardown's backup pulls",
)

huaweicloud.vpc.SecgroupRule(
    "ssh-ingress",
    security_group_id=secgroup.id,
    direction="ingress",
    ethertype="IPv4",
    protocol="tcp",
    ports="22",
    remote_ip_prefix=ssh_cidr,
    description="SSH",
)

# --- servers ----------------------------------------------------------------------------------
web_hooks = teardown_hooks(name="teardown-web-1", pull_paths=web_paths)
web = huaweicloud.ecs.Instance(
    "web-1",
    name="web-1",
    image_id=image_id,
    image_name=image_name,
    flavor_id=web_flavor,
    availability_zone=az,
    security_group_ids=[secgroup.id],
    networks=[{"uuid": subnet.id}],
    charging_mode="postPaid",
    system_disk_type="SSD",
    system_disk_size=40,
    tags={**common_tags, "role": "web", **hook_tag(web_hooks)},
    opts=pulumi.ResourceOptions(hooks=web_hooks),
)

# The policy pack (stacks/policy) cannot see hooks: each guarded resource also carries the tag
# that declares its before-delete hook (hook_tag), taken from the binding it is given.
db_hooks = teardown_hooks(name="teardown-db-1", pull_paths=db_paths, before=[db_dump])
db = huaweicloud.ecs.Instance(
    "db-1",
    name="db-1",
    image_id=image_id,
    image_name=image_name,
    flavor_id=db_flavor,
    availability_zone=az,
    security_group_ids=[secgroup.id],
    networks=[{"uuid": subnet.id}],
    # Prepaid: deleting it unsubscribes it through BSS (and deletes the disks bought with it);
    # teardown backs it up first and reads back the unsubscribe order.
    charging_mode="prePaid",
    period_unit="month",
    period=1,
    auto_renew="true",
    system_disk_type="SSD",
    system_disk_size=40,
    tags={**common_tags, "role": "db", **hook_tag(db_hooks)},
    opts=pulumi.ResourceOptions(hooks=db_hooks),
)

# A data disk bought separately (pay-per-use), so it outlives a server re-creation. It holds the
# database files: its hooks take no pull paths, the engine makes a CBR backup of the disk itself.
data_hooks = teardown_hooks(name="teardown-db-1-data")
data_disk = huaweicloud.evs.Volume(
    "db-1-data",
    name="db-1-data",
    availability_zone=az,
    volume_type="SSD",
    size=data_disk_gb,
    charging_mode="postPaid",
    tags={**common_tags, "role": "db-data", **hook_tag(data_hooks)},
    opts=pulumi.ResourceOptions(hooks=data_hooks),
)

huaweicloud.ecs.VolumeAttach("db-1-data-attach", instance_id=db.id, volume_id=data_disk.id)

# --- outputs ----------------------------------------------------------------------------------
pulumi.export("web1Id", web.id)
pulumi.export("web1Ip", web.access_ip_v4)
pulumi.export("db1Id", db.id)
pulumi.export("db1Ip", db.access_ip_v4)
pulumi.export("dataDiskId", data_disk.id)
