"""Benchmark: stream a file through one sandbox SSH server with paramiko and print MB/s.

Starts an ``SshFleet`` with one server in a temporary directory, writes a random file of
``--size-mb`` megabytes (10^6 bytes) under its root, and pulls it with ``paramiko`` exec ``cat``
into memory (4 MiB reads, bytes counted and hashed, nothing written to disk). MB/s = payload bytes
/ wall seconds of the exec (connection setup excluded; it is reported separately). Prints one line
per round and the median.

``--pump`` measures the fault-injection path instead (stdout pumped by the server so it can count
bytes; ``drop_after_bytes`` set above the file size so nothing is dropped).

Not run by the test suite:  .venv/bin/python scripts/bench_sandbox_ssh.py [--size-mb 200]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import paramiko  # type: ignore[import-untyped, unused-ignore]

from teardown.sandbox.ssh import SshFleet, SshServerSpec, ensure_keys

CHUNK = 4 * 1024 * 1024
GCM = "aes128-gcm@openssh.com"


def _connect(port: int, key: Path, cipher: str | None) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    # The benchmark trusts its own freshly created server; real pulls pin known_hosts.
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    disabled = {}
    if cipher is not None:
        others = [c for c in paramiko.Transport._preferred_ciphers if c != cipher]
        disabled = {"ciphers": others}
    client.connect(
        "127.0.0.1",
        port=port,
        username="root",
        key_filename=str(key),
        look_for_keys=False,
        allow_agent=False,
        disabled_algorithms=disabled,
    )
    return client


def _pull(client: paramiko.SSHClient, path: Path) -> tuple[int, str, int]:
    _, stdout, _ = client.exec_command(f"cat {path}")
    channel = stdout.channel
    digest = hashlib.sha256()
    received = 0
    while data := channel.recv(CHUNK):
        digest.update(data)
        received += len(data)
    return received, digest.hexdigest(), channel.recv_exit_status()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size-mb", type=int, default=200, help="payload size, 10^6 bytes")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--cipher",
        default=GCM,
        help=f"cipher to force on the client (default {GCM}; 'default' = paramiko's choice)",
    )
    parser.add_argument("--pump", action="store_true", help="measure the byte-counting path")
    args = parser.parse_args(argv)
    size = args.size_mb * 1_000_000
    cipher = None if args.cipher == "default" else args.cipher

    with tempfile.TemporaryDirectory(prefix="bench-sandbox-ssh-") as tmp:
        base = Path(tmp)
        root = base / "root"
        root.mkdir()
        payload = root / "payload.bin"
        expected = hashlib.sha256()
        with payload.open("wb") as f:
            left = size
            while left:
                block = os.urandom(min(CHUNK, left))
                expected.update(block)
                f.write(block)
                left -= len(block)
        keys = ensure_keys(base / "ssh")
        spec = SshServerSpec(
            server_id="bench",
            host_key=base / "host_key",
            root=root,
            drop_after_bytes=size * 2 if args.pump else None,
        )
        rates: list[float] = []
        with SshFleet(keys) as fleet:
            started = time.perf_counter()
            port = fleet.start([spec])["bench"]
            print(f"server listening after {(time.perf_counter() - started) * 1000:.1f} ms")
            for round_no in range(1, args.rounds + 1):
                started = time.perf_counter()
                client = _connect(port, keys.client_key, cipher)
                connected = time.perf_counter()
                try:
                    received, digest, status = _pull(client, payload)
                finally:
                    client.close()
                elapsed = time.perf_counter() - connected
                if received != size or digest != expected.hexdigest() or status != 0:
                    print(f"round {round_no}: BAD received={received} status={status}")
                    return 1
                rate = size / elapsed / 1e6
                rates.append(rate)
                print(
                    f"round {round_no}: {rate:.0f} MB/s "
                    f"({size / 1e6:.0f} MB in {elapsed:.2f} s; "
                    f"connect {(connected - started) * 1000:.0f} ms; "
                    f"cipher {cipher or 'paramiko default'}"
                    f"{'; pump' if args.pump else ''})"
                )
        print(f"median: {statistics.median(rates):.0f} MB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
