"""Support code every layer above the core may use: retry policies, polling, the system clock.
Small values and functions over tenacity and the standard library; the only I/O is reading a TOML
file the caller names (`toml_file`)."""
