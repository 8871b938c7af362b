"""Support code every layer above the core may use: retry policies, polling, the system clock.
Small values and functions over tenacity and the standard library; no I/O of their own."""
