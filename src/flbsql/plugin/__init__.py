"""The Fluent Bit side: what the C shim calls, and the two plugin objects."""
