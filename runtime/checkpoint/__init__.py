"""Checkpoint coordination and storage."""
