"""teardown: back up before you destroy or unsubscribe.

Layers (dependencies point inward): ``core`` (pure model, planner, rules) <- ``ports`` (Protocols)
<- ``engine`` (journal, runner) <- ``adapters`` (cloud, SSH, Pulumi) <- ``cli``.
"""

from teardown.core.model import Plan, Resource

__version__ = "0.1.0"
__all__ = ["Plan", "Resource", "__version__"]
