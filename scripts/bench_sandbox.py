"""What the sandbox benchmarks (``bench_fanout``, ``bench_sweep``, ``bench_store``) share: a
scenario file of pay-per-use servers, and the sandbox's ``sandbox.toml``."""

from __future__ import annotations

from pathlib import Path


def bench_server(name: str, tags: str, text: str, *extra: str) -> list[str]:
    """One ``[[servers]]`` entry: pay-per-use at 0.30 an hour, a 40 GB system disk holding
    ``srv/app/data.txt`` = ``text``; ``tags`` is a TOML inline table's inside; ``extra`` lines
    go to the server (before the disk), or to the disk when they start with ``disk:``."""
    server = [line for line in extra if not line.startswith("disk:")]
    disk = [line.removeprefix("disk:") for line in extra if line.startswith("disk:")]
    return [
        "[[servers]]",
        f'name = "{name}"',
        'charging = "postPaid"',
        'hourly_price = "0.30"',
        *server,
        f"tags = {{ {tags} }}",
        "[servers.system_disk]",
        "size = 40",
        *disk,
        f'files = {{ "srv/app/data.txt" = "{text}" }}',
    ]


def write_scenario(path: Path, header: list[str], servers: list[list[str]]) -> Path:
    """Write a scenario file: ``header`` lines (name, description), then the servers."""
    lines = list(header)
    for server in servers:
        lines += server
    path.write_text("\n".join(lines) + "\n")
    return path


def write_sandbox_config(root: Path, durations: dict[str, float], latency: float | None) -> None:
    """``root/sandbox.toml``: the cloud-side ``durations`` (seconds), and a fixed ``latency``
    on every API call (seed 1) when given."""
    root.mkdir(parents=True, exist_ok=True)
    text = "[durations]\n" + "".join(f"{k} = {v}\n" for k, v in durations.items())
    if latency is not None:
        text += f'[faults]\nseed = 1\nlatency = {{ "*" = {latency} }}\n'
    (root / "sandbox.toml").write_text(text)
