"""The sandbox: a local Huawei-compatible cloud with real SSH servers (issue 3; not built yet)."""
