"""Placeholder registration module; filled in by its issue."""
