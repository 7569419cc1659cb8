"""A fault only a real HDFS allows: the DataNode killed (kill -9) while a datagen -> hdfs
exactly-once pipeline writes part files, and started again on the same ports and folder a
few seconds later.  The pipeline must retry on its own, with backoff, say what it waits for,
and end with the same files as a run that never failed (the ``reference`` of
test_hdfs_exactly_once.py)."""
from __future__ import annotations

import re
import time

import pytest

from tests.e2e.lake import hidden_files, lake_rows
from tests.integration.hdfs.test_hdfs_exactly_once import reference, write_pipeline  # noqa: F401
from tests.killing import run_through_outage

pytestmark = [pytest.mark.integration, pytest.mark.hdfs]


@pytest.fixture(scope="module")
def cluster(webhdfs_server):
    """The session's HDFS when the tests started it; else (HUB_TEST_WEBHDFS names one we must
    not stop) a throwaway one of this module's own."""
    if webhdfs_server.cluster is not None:
        yield webhdfs_server.cluster
        return
    from tests.servers.hdfs import ThrowawayHdfs

    own = ThrowawayHdfs()
    own.start()
    yield own
    own.stop()


def test_datanode_restarted_while_part_files_are_written(tmp_path, cluster, reference):
    base = f"hdfs://hub@127.0.0.1:{cluster.http_port}/it/dn-restart-{time.time_ns()}"
    pipeline = write_pipeline(tmp_path, base, rps=10_000)
    err = run_through_outage(pipeline, f"{base}/state", cluster.kill_datanode,
                             cluster.start_datanode, lambda: cluster.datanode is None,
                             cwd=str(tmp_path), timeout=240)
    # it met the dead DataNode, said so, and waited with backoff
    dn = f"127.0.0.1:{cluster.dn_ports['dfs.datanode.http.address']}"
    assert re.search(rf"the HDFS DataNode at {dn} can't be reached \(connection (refused|reset|"
                     rf"lost)\): restarting from the latest checkpoint in 1.0s", err), err
    # one more attempt each time, each waiting twice as long, until it could go on
    waits = [(float(d), int(n)) for d, n in re.findall(
        r"restarting from the latest checkpoint in ([0-9.]+)s \(attempt (\d+) of", err)]
    assert len(waits) >= 2 and waits == [(2.0 ** i, i + 1) for i in range(len(waits))], err
    assert lake_rows(f"{base}/lake") == reference
    assert hidden_files(f"{base}/lake") == []
