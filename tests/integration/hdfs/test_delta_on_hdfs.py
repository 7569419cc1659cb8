"""Delta tables on a real HDFS, through the deltalake package's own HDFS client (Hadoop's RPC
protocol at the NameNode's RPC address, not WebHDFS): the same pipeline lands the same tables
there as on a local disk."""
from __future__ import annotations

import os
import uuid
from urllib.parse import urlparse

import pytest

from tests.killing import run_to_end

pytestmark = [pytest.mark.integration, pytest.mark.hdfs, pytest.mark.delta]

deltalake = pytest.importorskip("deltalake")

PIPELINE = """
[pipeline]
name = "{name}"
parallelism = 2
[checkpoint]
interval = "300ms"
dir = "{state}"
[source]
type = "datagen"
tables = ["orders"]
rows = 20000
batch-size = 1000
update-ratio = 0.3
delete-ratio = 0.1
event-time-start = "2026-11-24T10:00:00Z"
[sink]
type = "delta"
path = "{path}"
"""


def _rows(uri: str, options: dict | None = None) -> list[dict]:
    table = deltalake.DeltaTable(uri, storage_options=options).to_pyarrow_table()
    return sorted(table.to_pylist(), key=lambda r: r["id"])


def test_the_same_tables_on_hdfs_as_on_a_local_disk(webhdfs_server, tmp_path, monkeypatch):
    if not webhdfs_server.rpc_url:
        pytest.skip("the HDFS under test gives no RPC address (HUB_TEST_HDFS_RPC)")
    lake = f"{webhdfs_server.rpc_url}/it/{uuid.uuid4().hex[:12]}/lake"
    env = {"HADOOP_USER_NAME": webhdfs_server.user or os.environ.get("HADOOP_USER_NAME", "hub")}
    for name, path in (("on-hdfs", lake), ("on-disk", str(tmp_path / "lake"))):
        (tmp_path / f"{name}.toml").write_text(PIPELINE.format(
            name=name, state=tmp_path / f"state-{name}", path=path))
        run_to_end(str(tmp_path / f"{name}.toml"), env=env)
    monkeypatch.setenv("HADOOP_USER_NAME", env["HADOOP_USER_NAME"])
    on_hdfs = _rows(f"{lake}/datagen/orders")
    assert len(on_hdfs) > 5_000
    assert on_hdfs == _rows(str(tmp_path / "lake" / "datagen" / "orders"))
    # written through HDFS itself: the table's log is in the NameNode's namespace
    log = webhdfs_server.client().list(urlparse(lake).path + "/datagen/orders/_delta_log")
    assert "00000000000000000000.json" in log
