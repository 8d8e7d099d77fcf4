"""Helpers shared by the test modules (import them from here, never from a test module)."""
