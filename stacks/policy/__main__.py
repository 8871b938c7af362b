"""teardown's policy pack: data-holding resources must be guarded before anything can delete them.

Run it with ``pulumi preview --policy-pack stacks/policy`` (see README.md). The policy itself
lives in ``teardown_guard.py`` (a plain function the tests call); this file only starts the pack,
which serves the engine over gRPC until the engine stops it.
"""

from __future__ import annotations

from pulumi_policy import PolicyPack
from teardown_guard import DEFAULT_ENFORCEMENT, PACK_DESCRIPTION, PACK_NAME, make_policy

PolicyPack(
    name=PACK_NAME,
    policies=[make_policy()],
    # Advisory unless the policy config says otherwise (`--policy-pack-config`, Pulumi Cloud).
    enforcement_level=DEFAULT_ENFORCEMENT,
    description=PACK_DESCRIPTION,
)
