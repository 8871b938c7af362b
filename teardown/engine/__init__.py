"""Engine: the SQLite journal, the runner, retry policies and events."""
