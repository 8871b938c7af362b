"""teardown: back up before you destroy or unsubscribe.

Layers (dependencies point inward; ``lint-imports`` checks them, see docs/architecture.md):
``core`` (pure model, planner, rules) <- ``ports`` (Protocols, the provider interface) <-
``engine`` : ``support`` (journal, runner, step handlers, report : retry, polling, clock) <-
``adapters`` (Huawei Cloud, SSH, Pulumi, the local store) <- ``app`` (services, providers) <-
``cli`` and ``teardown.pulumi``.

``__version__`` is the one place the version is written: ``pyproject.toml`` reads it
(``[tool.setuptools.dynamic]``) and ``teardown --version`` prints it.
"""

from teardown.core.model import Plan, Resource

__version__ = "0.1.0"
__all__ = ["Plan", "Resource", "__version__"]
