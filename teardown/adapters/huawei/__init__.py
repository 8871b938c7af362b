"""Huawei Cloud adapter: the official SDK (ECS, EVS, CBR, BSS) behind teardown's ports.

- :mod:`.profile`: where to connect (a profile file, or the environment);
- :mod:`.clients`: one factory for the SDK clients;
- :mod:`.errors`: the one place SDK failures become ``TransientError``/``PermanentError``;
- :mod:`.inventory`, :mod:`.snapshots`, :mod:`.destroyer`, :mod:`.billing`: the ports.
"""

from teardown.adapters.huawei.billing import HuaweiBilling
from teardown.adapters.huawei.clients import Clients
from teardown.adapters.huawei.destroyer import HuaweiDestroyer
from teardown.adapters.huawei.errors import NotFound, call
from teardown.adapters.huawei.inventory import HuaweiInventory
from teardown.adapters.huawei.profile import HuaweiProfile, load_profile, profile_from_env
from teardown.adapters.huawei.snapshots import CbrSnapshotter

__all__ = [
    "CbrSnapshotter",
    "Clients",
    "HuaweiBilling",
    "HuaweiDestroyer",
    "HuaweiInventory",
    "HuaweiProfile",
    "NotFound",
    "call",
    "load_profile",
    "profile_from_env",
]
