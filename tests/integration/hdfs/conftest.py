"""Fixtures of the HDFS suite: a fresh folder on the session's WebHDFS per test."""
from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def hdfs_dir(webhdfs_server) -> str:
    """``hdfs://host:port/it/<unique>``: a folder of this test's own (not created yet)."""
    return f"{webhdfs_server.url}/it/{uuid.uuid4().hex[:12]}"
