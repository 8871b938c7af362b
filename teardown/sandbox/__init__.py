"""The sandbox: a local Huawei-compatible cloud with real SSH servers, for the tests and the demo.

It speaks the ECS, EVS, CBR, BSS and EIP APIs over HTTP on 127.0.0.1, so the Huawei adapter
runs the official SDK against it unchanged, and serves each cloud server's files over real SSH
and SFTP.
Asynchronous work and billing follow an injected clock; faults (errors, throttling, latency,
failed backups) are switched on in its settings. What it emulates, and the assumptions it makes
where the published API reference is silent, are listed in docs/huawei-api.md.

Modules:

- :mod:`.runtime`: starting and stopping a sandbox directory (state, listeners, SSH, profile);
- :mod:`.config`: ``sandbox.toml``: account, durations of asynchronous work, fault injection;
- :mod:`.store`: the SQLite state and the timers that stand for asynchronous work;
- :mod:`.http` and :mod:`.api`: routing, request signing, Huawei-style errors, the listeners;
- :mod:`.services`: one module of API handlers per service (ECS, EVS, CBR, BSS, EIP, tags);
- :mod:`.resources`: servers, disks and EIPs, their wire shapes and the effects that destroy
  data;
- :mod:`.billing`: the BSS ledger (orders, subscriptions, payments, refunds, releases);
- :mod:`.scenario`: the TOML scenarios a sandbox starts from (bundled ones in ``scenarios/``);
- :mod:`.ssh`: one SSH server per cloud server, on loopback;
- :mod:`.restore`: restoring a sandbox CBR backup to a local directory, with checksums.
"""
