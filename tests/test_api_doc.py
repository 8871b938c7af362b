"""Every Huawei operation teardown touches has a row in docs/huawei-api.md's ``## Operations``.

Two sides are collected, independently of the doc:

- the sandbox: every route registered with ``@route`` (``teardown.sandbox.http._ROUTES``),
  named by the official SDK operation at the route's method and path (a route that serves
  several SDK operations at one path, as ``BatchServerTags`` serves BatchCreateServerTags and
  BatchDeleteServerTags, needs a row for each);
- the adapter: a static scan of ``teardown/adapters/huawei/*.py`` for ``clients.<svc>.<method>``
  (called, or passed on as with ``partial(self.clients.ecs.show_server_tags, ...)``), named by
  the SDK's method naming (``list_servers_details`` -> ``ecs.ListServersDetails``).

The doc's rows are read from the first cell of each table row of that section
(```ecs.ListServersDetails```). A failure names each operation that has no row.
"""

from __future__ import annotations

import ast
import importlib
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path

import pytest

import teardown.sandbox.services  # noqa: F401  (registers the routes)
from teardown.sandbox.http import _ROUTES

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "huawei-api.md"
ADAPTER = ROOT / "teardown" / "adapters" / "huawei"
SECTION = "## Operations"

SDK_CLIENTS = {
    "ecs": ("huaweicloudsdkecs.v2", "EcsClient"),
    "evs": ("huaweicloudsdkevs.v2", "EvsClient"),
    "cbr": ("huaweicloudsdkcbr.v1", "CbrClient"),
    "bss": ("huaweicloudsdkbss.v2", "BssClient"),
    "eip": ("huaweicloudsdkeip.v2", "EipClient"),
}
"""The ``Clients`` attribute -> the SDK package and client class it builds."""

_OPERATION_CELL = re.compile(r"`([a-z]+\.[A-Z][A-Za-z0-9]*)`")
_PLACEHOLDER = re.compile(r"<(?:[^:>]+:)?[^>]+>|\{[^}]+\}")


def operation_name(method: str) -> str:
    """The SDK's operation name for a client method: ``list_servers_details`` ->
    ``ListServersDetails`` (the SDK names its request classes ``<Operation>Request``)."""
    return "".join(part[:1].upper() + part[1:] for part in method.split("_"))


def _shape(path: str) -> str:
    """A path with its parameters blanked: Werkzeug's ``<x>`` and the SDK's ``{x}`` alike."""
    return _PLACEHOLDER.sub("{}", path.rstrip("/"))


@cache
def sdk_operations(service: str) -> dict[str, tuple[str, str]]:
    """Operation name -> (HTTP method, resource path) of every operation of the SDK client, from
    the client's own ``_<method>_http_info``."""
    package, client_name = SDK_CLIENTS[service]
    module = importlib.import_module(package)
    client = getattr(module, client_name)
    out: dict[str, tuple[str, str]] = {}
    for attr in dir(client):
        m = re.fullmatch(r"_(\w+)_http_info", attr)
        if m is None:
            continue
        name = operation_name(m.group(1))
        request = getattr(module, f"{name}Request", None)
        if request is None:
            continue
        info = getattr(client, attr)(request())
        out[name] = (str(info["method"]), str(info["resource_path"]))
    return out


def sdk_names_for_route(service: str, method: str, path: str, operation: str) -> list[str]:
    """The SDK operations a sandbox route serves: the one named like the route when it is at the
    route's method and path, else every SDK operation at that method and path, else (no SDK
    operation there) the route's own name."""
    at_path = sorted(
        name
        for name, (m, p) in sdk_operations(service).items()
        if m == method and _shape(p) == _shape(path)
    )
    if operation in at_path:
        return [f"{service}.{operation}"]
    return [f"{service}.{n}" for n in at_path] or [f"{service}.{operation}"]


def sandbox_operations() -> set[str]:
    """Every operation the sandbox implements (``service.Operation``)."""
    out: set[str] = set()
    for r in _ROUTES:
        out.update(sdk_names_for_route(r.service, r.method, r.path, r.operation))
    return out


def _client_calls(tree: ast.AST) -> Iterable[tuple[str, str]]:
    """``(service, method)`` for each ``clients.<service>.<method>`` or
    ``<x>.clients.<service>.<method>`` attribute in the module (docstrings are not code)."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute) or not isinstance(node.value, ast.Attribute):
            continue
        holder = node.value.value
        named_clients = (isinstance(holder, ast.Name) and holder.id == "clients") or (
            isinstance(holder, ast.Attribute) and holder.attr == "clients"
        )
        if named_clients and node.value.attr in SDK_CLIENTS:
            yield node.value.attr, node.attr


def adapter_calls() -> dict[str, list[str]]:
    """Operation (``service.Operation``) -> the adapter files that call it."""
    out: dict[str, list[str]] = {}
    for path in sorted(ADAPTER.glob("*.py")):
        for service, method in _client_calls(ast.parse(path.read_text(encoding="utf-8"))):
            out.setdefault(f"{service}.{operation_name(method)}", []).append(path.name)
    return out


def section_rows(doc_text: str) -> list[list[str]]:
    """The cells of each table row of the doc's ``## Operations`` section (header and
    separator rows left out)."""
    lines = doc_text.splitlines()
    try:
        start = lines.index(SECTION)
    except ValueError:
        return []
    rows: list[list[str]] = []
    for line in lines[start + 1 :]:
        if line.startswith("## "):
            break
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and _OPERATION_CELL.search(cells[0]):
            rows.append(cells)
    return rows


def documented_operations(doc_text: str) -> set[str]:
    """The operations with a row in the doc's ``## Operations`` table (first cell)."""
    return {op for cells in section_rows(doc_text) for op in _OPERATION_CELL.findall(cells[0])}


def missing_rows(doc_text: str, operations: Iterable[str]) -> list[str]:
    """The operations of ``operations`` without a row, sorted."""
    return sorted(set(operations) - documented_operations(doc_text))


# -- the two sides are found at all ----------------------------------------------------------


def test_both_sides_are_collected() -> None:
    sandbox, adapter = sandbox_operations(), set(adapter_calls())
    # A few operations each side is known to use, so that a broken scan cannot pass as empty.
    assert {"ecs.ListServersDetails", "cbr.CreateCheckpoint", "eip.DeletePublicip"} <= sandbox
    assert {"ecs.BatchCreateServerTags", "ecs.BatchDeleteServerTags"} <= sandbox
    assert {"bss.CancelCustomerOrder", "evs.ShowJob", "ecs.ShowJob"} <= adapter
    assert "ecs.ShowServerTags" in adapter  # passed to partial(), never called in place


def test_every_adapter_call_is_an_sdk_operation() -> None:
    unknown = [
        op for op in adapter_calls() if op.split(".")[1] not in sdk_operations(op.split(".")[0])
    ]
    assert unknown == [], f"the adapter calls methods the SDK clients do not have: {unknown}"


def test_every_sandbox_route_is_at_the_path_of_an_sdk_operation() -> None:
    """A route is where the official client sends its operation (method and path)."""
    stray = []
    for r in _ROUTES:
        names = sdk_names_for_route(r.service, r.method, r.path, r.operation)
        for full in names:
            service, name = full.split(".")
            if name not in sdk_operations(service):
                stray.append(f"{r.service} {r.method} {r.path} ({r.operation})")
    assert stray == [], f"sandbox routes no SDK operation is sent to: {stray}"


# -- every operation has a row ----------------------------------------------------------------


def test_every_operation_has_a_row_in_the_operations_table() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert SECTION in text.splitlines(), f"docs/huawei-api.md has no {SECTION!r} section"
    sandbox = sandbox_operations()
    adapter = adapter_calls()
    missing = missing_rows(text, sandbox | set(adapter))
    described = [
        op
        + (" (sandbox)" if op in sandbox else "")
        + (f" (adapter: {', '.join(sorted(set(adapter[op])))})" if op in adapter else "")
        for op in missing
    ]
    assert not missing, (
        f"operations with no row in the {SECTION} table of docs/huawei-api.md: "
        + "; ".join(described)
    )


@pytest.mark.parametrize("removed", ["ecs.ListServersDetails", "bss.CancelCustomerOrder"])
def test_a_missing_row_is_named(removed: str) -> None:
    """The check can fail: the doc with one row taken out names that operation, and only it."""
    text = DOC.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    start = lines.index(SECTION + "\n")
    rows = [
        i
        for i, line in enumerate(lines)
        if i > start and line.startswith("|") and f"`{removed}`" in line.split("|")[1]
    ]
    assert len(rows) == 1, f"expected one row for {removed}, found {len(rows)}"
    without = "".join(lines[: rows[0]] + lines[rows[0] + 1 :])
    operations = sandbox_operations() | set(adapter_calls())
    already = missing_rows(text, operations)  # empty unless the main test fails too
    assert removed not in already
    assert missing_rows(without, operations) == sorted({removed, *already})


def test_rows_outside_the_section_do_not_count() -> None:
    doc = "\n".join(
        [
            "# title",
            "## ECS",
            "| `ecs.ShowServer` | elsewhere |",
            SECTION,
            "| operation | method and path |",
            "|---|---|",
            "| `ecs.ListServersDetails` | `GET /v1/{project_id}/cloudservers/detail` |",
            "## Next",
            "| `ecs.DeleteServers` | after the section |",
        ]
    )
    assert documented_operations(doc) == {"ecs.ListServersDetails"}
    assert missing_rows(doc, ["ecs.ShowServer", "ecs.ListServersDetails"]) == ["ecs.ShowServer"]


def test_each_row_names_the_sdks_method_and_path() -> None:
    """The second cell is the SDK client's method and resource path, exactly."""
    wrong = []
    for cells in section_rows(DOC.read_text(encoding="utf-8")):
        (op,) = _OPERATION_CELL.findall(cells[0])
        service, name = op.split(".")
        known = sdk_operations(service).get(name)
        expected = f"`{known[0]} {known[1]}`" if known else "(no such SDK operation)"
        if cells[1] != expected:
            wrong.append(f"{op}: {cells[1]} (the SDK: {expected})")
    assert wrong == [], "rows whose method and path are not the SDK's: " + "; ".join(wrong)


def test_each_row_has_every_column_and_a_status() -> None:
    header = "| operation | method and path | request fields used | response fields read |"
    text = DOC.read_text(encoding="utf-8")
    assert any(line.startswith(header) for line in text.splitlines())
    for cells in section_rows(text):
        assert len(cells) == 8, f"{cells[0]}: {len(cells)} columns, expected 8"
        assert cells[6].count("https://") >= 1, f"{cells[0]}: no public source URL"
        assert cells[7].startswith("confirmed") or "**assumption**" in cells[7], cells[0]
