"""Adapters: implementations of the ports for clouds, SSH, Pulumi and fakes."""
