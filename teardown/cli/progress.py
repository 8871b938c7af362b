"""How a run shows itself: rich progress bars on a terminal, plain lines otherwise (or none with
--quiet), and JSON lines of every event for pipelines (--events FILE). NO_COLOR is honoured by
rich itself."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import IO, Any

import click
from rich.progress import Progress, TaskID, TextColumn

from teardown.cli.common import echo
from teardown.cli.render import QuietConsole
from teardown.core.model import Plan
from teardown.core.text import printable
from teardown.engine.events import Event, Observer, PhaseChanged, StepFailed, StepSucceeded
from teardown.engine.events import Progress as PullProgress


def _json_value(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


class JsonLines:
    """Every event as one JSON object per line: ``{"event": "PhaseChanged", "at": ..., ...}``."""

    def __init__(self, path: Path) -> None:
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600)
        self._file: IO[str] = os.fdopen(fd, "a", encoding="utf-8", buffering=1)
        self.label = f"the events file {path}"

    def __call__(self, event: Event, extra: Mapping[str, str] | None = None) -> None:
        """Write ``event``; ``extra`` adds fields (a sweep adds the ``scope``)."""
        fields = {k: _json_value(v) for k, v in dataclasses.asdict(event).items()}
        record = {
            "event": type(event).__name__,
            "at": datetime.now(UTC).isoformat(),
            **fields,
            **(extra or {}),
        }
        self._file.write(json.dumps(record, sort_keys=True) + "\n")

    def close(self) -> None:
        with contextlib.suppress(OSError):  # a full disk already said so while writing
            self._file.close()


def plain_lines(plan: Plan) -> Observer:
    """Phase changes and failures as lines on stderr."""
    names = {rp.resource.urn: rp.resource.name for rp in plan.resources}

    def show(event: Event) -> None:
        urn = getattr(event, "urn", "")
        name = names.get(urn, urn)
        if isinstance(event, PhaseChanged):
            note = f": {event.detail}" if event.detail else ""
            echo(f"  {name} -> {event.phase}{note}", err=True)
        elif isinstance(event, StepFailed):
            echo(f"  {event.kind} failed on {name}: {event.error}", err=True)
        elif isinstance(event, StepSucceeded) and event.reused_from:
            echo(f"  {name}: {event.kind} {event.reuse_note}", err=True)

    return show


class Bars:
    """One line per resource: phase, bytes and files pulled, rate."""

    def __init__(self, plan: Plan) -> None:
        self._progress = Progress(
            TextColumn("{task.fields[name]:<14}"),
            TextColumn("{task.fields[phase]:<11}"),
            TextColumn("{task.fields[data]}"),
            console=QuietConsole(stderr=True),
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        for rp in plan.resources:
            self._tasks[rp.resource.urn] = self._progress.add_task(
                "", total=None, name=printable(rp.resource.name), phase="planned", data=""
            )
        self._progress.start()

    def __call__(self, event: Event) -> None:
        task = self._tasks.get(getattr(event, "urn", ""))
        if task is None:
            return
        if isinstance(event, PhaseChanged):
            self._progress.update(task, phase=event.phase.value)
        elif isinstance(event, PullProgress):
            rate = f", {event.rate / 1e6:.1f} MB/s" if event.rate else ""
            self._progress.update(
                task, data=f"{event.bytes / 1e6:.1f} MB, {event.files} files{rate}"
            )
        elif isinstance(event, StepFailed):
            self._progress.update(task, data=f"{event.kind} failed")
        elif isinstance(event, StepSucceeded) and event.reused_from:
            self._progress.update(task, data=printable(f"{event.kind} {event.reuse_note}"))

    def close(self) -> None:
        self._progress.stop()


def observers_for(
    plan: Plan, *, quiet: bool, events_path: Path | None
) -> tuple[list[Observer], Callable[[], None]]:
    """The observers a command attaches, and what to call when the run ends."""
    observers: list[Observer] = []
    closers: list[Callable[[], None]] = []
    if events_path is not None:
        lines = JsonLines(events_path)
        observers.append(lines)
        closers.append(lines.close)
    if not quiet:
        if sys.stderr.isatty():
            bars = Bars(plan)
            observers.append(bars)
            closers.append(bars.close)
        else:
            observers.append(plain_lines(plan))

    def close() -> None:
        for c in closers:
            c()

    return observers, close


quiet_option = click.option(
    "--quiet", is_flag=True, help="No progress output (errors and the report only)."
)
events_option = click.option(
    "--events",
    "events_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Append every event as a JSON line to this file (for pipelines).",
)
