"""Pulumi adapter: reading exported state (and, later, the Automation API and hooks)."""
