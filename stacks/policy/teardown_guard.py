"""The policy of the ``teardown-guard`` pack: every data-holding resource must be guarded.

A resource is guarded when it carries one of (checked in this order):

1. ``protect`` (``pulumi.ResourceOptions(protect=True)``): the engine refuses to delete it at all;
2. an opt-out tag (``teardown:opt-out`` by default) whose value gives the reason;
3. a hook declaration tag (``teardown:before-delete`` by default) whose value is the name of the
   teardown before-delete hook bound to it (``<name>-before-delete-<key>``, as
   :func:`teardown.pulumi.teardown_hooks` names it).

Why a declaration and not the hook itself: a policy cannot see resource hooks. pulumi-policy's
``PolicyResourceOptions`` (``sdk/python/lib/pulumi_policy/policy.py``, 1.21.0 and its newest
source) has ``protect``, ``ignore_changes``, ``delete_before_replace``, ``aliases``,
``custom_timeouts``, ``additional_secret_outputs`` and ``parent``, and no hooks, because the engine
sends none: ``AnalyzerResourceOptions`` in ``proto/pulumi/analyzer.proto`` of pulumi/pulumi has no
hooks field, and ``marshalResourceOptions`` in ``pkg/resource/plugin/analyzer_plugin.go`` copies
no hooks. So the declaration tag is a claim the program makes, checked for its form only; see
README.md for what does verify the hooks (a mocks test of the program).

Which types hold data: the ones teardown's catalog classifies as data kinds
(``teardown.adapters.huawei.catalog.TYPE_KINDS`` filtered by ``teardown.core.model.DATA_KINDS``),
which teardown's hook backs up, plus the ``extraDataTypes`` of the policy config. teardown's
``before_delete`` returns at once, backing nothing up, for a type outside its data kinds
(``teardown/app/pulumi_hooks.py``), so for an extra type a hook declaration does not count: only
``protect`` or the opt-out tag does.

The validation logic is :func:`check_resource`, a plain function over plain values;
:func:`validate` adapts pulumi-policy's arguments to it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
)

from teardown.adapters.huawei.catalog import TYPE_KINDS
from teardown.core.model import DATA_KINDS

PACK_NAME = "teardown-guard"
POLICY_NAME = "teardown-data-resources-guarded"
DEFAULT_ENFORCEMENT = EnforcementLevel.ADVISORY
"""The pack's level when the policy config sets none (``--policy-pack-config``, Pulumi Cloud)."""
PACK_DESCRIPTION = (
    "Every resource that holds data carries teardown's before-delete hook, protect, "
    "or an explicit opt-out tag."
)

HOOKED_DATA_TYPES: frozenset[str] = frozenset(
    type_ for type_, kind in TYPE_KINDS.items() if kind in DATA_KINDS
)
"""Types teardown's before-delete hook backs up: the data kinds of teardown's catalog."""

DEFAULT_OPT_OUT_TAG = "teardown:opt-out"
DEFAULT_HOOK_TAG = "teardown:before-delete"
TAGS_PROPERTY = "tags"

HOOK_NAME = re.compile(r"^(?P<prefix>[A-Za-z0-9_.:-]+)-before-delete-[0-9a-f]{10}$")
"""The name :func:`teardown.pulumi.teardown_hooks` gives its before-delete hook:
``f"{name}-before-delete-{key}"`` with a 10-hex-digit key (``teardown/pulumi.py``)."""

TYPE_TOKEN = r"^[^:\s]+:[^:\s]*:[^:\s]+$"

HOOKS_INVISIBLE = (
    "a policy cannot see resource hooks (pulumi-policy's PolicyResourceOptions and the engine's "
    "AnalyzerResourceOptions carry none), so the pack checks a declaration tag instead"
)

CONFIG_SCHEMA = PolicyConfigSchema(
    properties={
        "extraDataTypes": {
            "type": "array",
            "items": {"type": "string", "pattern": TYPE_TOKEN},
            "default": [],
            "description": (
                "More type tokens that hold data (e.g. huaweicloud:Rds/instance:Instance). "
                "teardown's hook does not back them up, so they need protect or the opt-out tag."
            ),
        },
        "hookedTypes": {
            "type": "array",
            "items": {"type": "string", "pattern": TYPE_TOKEN},
            "default": [],
            "description": (
                "More type tokens that hold data and that teardown's hook backs up because "
                "teardown.toml maps them to a data kind ([types] kinds: component, "
                "dynamic-provider or other providers' types): a hook declaration guards them."
            ),
        },
        "optOutTag": {
            "type": "string",
            "minLength": 1,
            "default": DEFAULT_OPT_OUT_TAG,
            "description": "Tag key whose (non-empty) value is the reason a resource opts out.",
        },
        "hookTag": {
            "type": "string",
            "default": DEFAULT_HOOK_TAG,
            "description": (
                "Tag key declaring the teardown before-delete hook bound to the resource (its "
                'value: the hook name). "" accepts no declaration: only protect or opt-out.'
            ),
        },
    }
)


@dataclass(frozen=True)
class GuardConfig:
    """The policy's settings, from the pack config (the engine fills in the schema defaults)."""

    extra_data_types: frozenset[str] = frozenset()
    hooked_types: frozenset[str] = frozenset()
    """Types teardown.toml maps to a data kind ([types] kinds): the hook backs them up."""
    opt_out_tag: str = DEFAULT_OPT_OUT_TAG
    hook_tag: str = DEFAULT_HOOK_TAG
    """Empty: hook declarations are not accepted."""

    @classmethod
    def from_policy_config(cls, config: Mapping[str, Any]) -> GuardConfig:
        extra = _type_list(config, "extraDataTypes")
        hooked = _type_list(config, "hookedTypes")
        opt_out = config.get("optOutTag", DEFAULT_OPT_OUT_TAG)
        hook = config.get("hookTag", DEFAULT_HOOK_TAG)
        if not isinstance(opt_out, str) or not opt_out:
            raise ValueError(f"{POLICY_NAME}: optOutTag must be a non-empty string")
        if not isinstance(hook, str):
            raise ValueError(f"{POLICY_NAME}: hookTag must be a string")
        return cls(
            extra_data_types=frozenset(extra),
            hooked_types=frozenset(hooked),
            opt_out_tag=opt_out,
            hook_tag=hook,
        )

    def data_types(self) -> frozenset[str]:
        return HOOKED_DATA_TYPES | self.hooked_types | self.extra_data_types

    def hookable(self, resource_type: str) -> bool:
        """Whether teardown's before-delete hook backs up this type."""
        return resource_type in HOOKED_DATA_TYPES or resource_type in self.hooked_types


def _type_list(config: Mapping[str, Any], key: str) -> list[str]:
    value = config.get(key, [])
    if not isinstance(value, list | tuple) or not all(isinstance(t, str) for t in value):
        raise ValueError(f"{POLICY_NAME}: {key} must be a list of type tokens")
    bad = [t for t in value if not re.match(TYPE_TOKEN, t)]
    if bad:
        raise ValueError(f"{POLICY_NAME}: {key}: not type tokens: {bad}")
    return list(value)


def _tags(props: Mapping[str, Any]) -> Mapping[str, Any]:
    tags = props.get(TAGS_PROPERTY)
    return tags if isinstance(tags, Mapping) else {}


def check_resource(
    resource_type: str,
    name: str,
    props: Mapping[str, Any],
    protect: bool,
    config: GuardConfig,
) -> str | None:
    """The violation message for this resource, or None when it passes.

    ``props`` are the resource's inputs (``tags`` among them), ``protect`` its resource option.
    """
    if resource_type not in config.data_types():
        return None
    if protect:
        return None
    tags = _tags(props)
    opt_out = config.opt_out_tag
    hook_tag = config.hook_tag
    hookable = config.hookable(resource_type)
    problems: list[str] = []

    if opt_out in tags:
        reason = tags[opt_out]
        if isinstance(reason, str) and reason.strip():
            return None
        problems.append(f"its tag {opt_out!r} gives no reason (the tag's value must say why)")

    if hookable and hook_tag and hook_tag in tags:
        declared = tags[hook_tag]
        if isinstance(declared, str) and HOOK_NAME.match(declared):
            return None
        problems.append(
            f"its tag {hook_tag!r} = {declared!r} does not name a teardown before-delete hook "
            "(expected '<name>-before-delete-<10 hex digits>', the name teardown_hooks() gives)"
        )

    found = "; ".join(problems) if problems else "it carries no guard"
    what = f"{resource_type} {name!r} holds data and is not guarded: {found}."
    opt_out_fix = f"tags={{{opt_out!r}: '<reason>'}} to opt out"
    protect_fix = "opts=pulumi.ResourceOptions(protect=True)"
    if not hookable:
        return (
            f"{what} teardown's before-delete hook does not back up this type (teardown's catalog "
            f"lists only {', '.join(sorted(HOOKED_DATA_TYPES))} as holding data; map it in "
            "teardown.toml's [types] kinds and list it in this pack's hookedTypes to guard it "
            f"with the hook), so add {protect_fix}, or {opt_out_fix}."
        )
    if hook_tag:
        hook_fix = (
            "add opts=pulumi.ResourceOptions(hooks=teardown_hooks(...)) (from teardown.pulumi) "
            "and declare it with tags={..., **hook_tag(binding)} (binding: that same "
            f"teardown_hooks() result), that is {{{hook_tag!r}: binding.before_delete[0].name}} "
            f"(e.g. 'teardown-before-delete-0123456789'): {HOOKS_INVISIBLE}"
        )
    else:
        hook_fix = (
            "add opts=pulumi.ResourceOptions(hooks=teardown_hooks(...)) (from teardown.pulumi); "
            f"{HOOKS_INVISIBLE}, and this pack's hookTag config is empty, so it accepts no "
            "declaration either: also add protect or the opt-out tag"
        )
    return f"{what} Fix: {hook_fix}; or {protect_fix}; or {opt_out_fix}."


def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """pulumi-policy's resource validation: :func:`check_resource` over ``args``."""
    config = GuardConfig.from_policy_config(args.get_config())
    message = check_resource(args.resource_type, args.name, args.props, args.opts.protect, config)
    if message is not None:
        report_violation(message, None)


def make_policy() -> ResourceValidationPolicy:
    return ResourceValidationPolicy(
        name=POLICY_NAME,
        description=(
            "Resources that hold data carry teardown's before-delete hook (declared by a tag, "
            "since policies cannot see hooks), protect, or an opt-out tag with a reason."
        ),
        validate=validate,
        config_schema=CONFIG_SCHEMA,
        severity=Severity.HIGH,
        remediation_steps=(
            "Bind teardown_hooks(...) in ResourceOptions(hooks=...) and tag the resource "
            f"{DEFAULT_HOOK_TAG}=<its before-delete hook name>; or set protect=True; or tag it "
            f"{DEFAULT_OPT_OUT_TAG}=<reason>."
        ),
    )


__all__ = [
    "CONFIG_SCHEMA",
    "DEFAULT_ENFORCEMENT",
    "HOOKED_DATA_TYPES",
    "PACK_DESCRIPTION",
    "PACK_NAME",
    "POLICY_NAME",
    "GuardConfig",
    "check_resource",
    "make_policy",
    "validate",
]
