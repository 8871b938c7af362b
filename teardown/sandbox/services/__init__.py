"""The sandbox's API handlers, one module per Huawei service; importing this registers them."""

from teardown.sandbox.services import bss, cbr, ecs, eip, evs, tags

__all__ = ["bss", "cbr", "ecs", "eip", "evs", "tags"]
