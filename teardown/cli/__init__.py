"""Command line: parses, wires adapters, calls one library function, maps errors to exit codes."""
