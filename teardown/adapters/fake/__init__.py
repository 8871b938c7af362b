"""A fake cloud with state on disk and failure switches, for tests and the crash harness."""
