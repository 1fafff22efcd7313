"""Fluent Bit's record format."""
