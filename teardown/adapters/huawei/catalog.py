"""Huawei Cloud's Pulumi type tokens and what each is: the one type -> kind table, shared by
the inventory (which gives servers and disks these types) and the Pulumi state reader.

Type tokens as the pulumi-huaweicloud provider generates them (tfgen from the Terraform
provider): https://www.pulumi.com/registry/packages/huaweicloud/api-docs/
"""

from __future__ import annotations

from types import MappingProxyType

from teardown.core.model import Kind
from teardown.ports.provider import Catalog

SERVER_TYPE = "huaweicloud:Ecs/instance:Instance"
VOLUME_TYPE = "huaweicloud:Evs/volume:Volume"

TYPE_KINDS: MappingProxyType[str, Kind] = MappingProxyType(
    {
        # Servers and disks: hold data.
        SERVER_TYPE: Kind.SERVER,
        VOLUME_TYPE: Kind.VOLUME,
        # Public addresses and bandwidth: hold no data, but bill.
        "huaweicloud:Vpc/eip:Eip": Kind.ADDRESS,
        "huaweicloud:Vpc/bandwidth:Bandwidth": Kind.ADDRESS,
        "huaweicloud:Vpc/eipAssociate:EipAssociate": Kind.ADDRESS,
        "huaweicloud:Ecs/eipAssociate:EipAssociate": Kind.ADDRESS,
        # Network objects and other stateless types: hold no data, not billed on their own.
        "huaweicloud:Vpc/vpc:Vpc": Kind.NETWORK,
        "huaweicloud:Vpc/subnet:Subnet": Kind.NETWORK,
        "huaweicloud:Vpc/secgroup:Secgroup": Kind.NETWORK,
        "huaweicloud:Vpc/secgroupRule:SecgroupRule": Kind.NETWORK,
        "huaweicloud:Vpc/route:Route": Kind.NETWORK,
        "huaweicloud:Vpc/routeTable:RouteTable": Kind.NETWORK,
        "huaweicloud:Vpc/peeringConnection:PeeringConnection": Kind.NETWORK,
        "huaweicloud:Vpc/peeringConnectionAccepter:PeeringConnectionAccepter": Kind.NETWORK,
        "huaweicloud:Vpc/addressGroup:AddressGroup": Kind.NETWORK,
        "huaweicloud:Vpc/port:Port": Kind.NETWORK,
        "huaweicloud:Vpc/vip:Vip": Kind.NETWORK,
        "huaweicloud:Vpc/vipAssociate:VipAssociate": Kind.NETWORK,
        "huaweicloud:NetworkAcl/acl:Acl": Kind.NETWORK,
        "huaweicloud:NetworkAcl/aclRule:AclRule": Kind.NETWORK,
        "huaweicloud:Ecs/keypair:Keypair": Kind.NETWORK,
        "huaweicloud:Dew/keypair:Keypair": Kind.NETWORK,
        "huaweicloud:Ecs/interfaceAttach:InterfaceAttach": Kind.NETWORK,
        "huaweicloud:Ecs/volumeAttach:VolumeAttach": Kind.NETWORK,
    }
)
"""Provider type token -> kind. Anything not listed is :attr:`Kind.UNKNOWN`, which blocks the
plan until the config says otherwise. ``Ecs/volumeAttach`` and ``Ecs/interfaceAttach`` are
attachments: destroying them detaches, the disk or port itself is a separate resource."""

CATALOG = Catalog(kinds=TYPE_KINDS, server_type=SERVER_TYPE, volume_type=VOLUME_TYPE)
