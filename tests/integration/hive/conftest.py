"""Fixtures of the Hive Metastore suite (the metastore itself, ``hive_metastore``, is in
tests/integration/conftest.py): a database name and a sink root of each test's own."""
from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def hive_db() -> str:
    """A metastore database name of this test's own (not created yet)."""
    return f"it_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def root(tmp_path):
    """The files sink's root folder of this test."""
    return tmp_path / "lake"
