"""A fault only a real HBase allows: HBase (master, region server and ZooKeeper: one JVM in
standalone mode) killed with kill -9 while an exactly-once datagen -> hbase pipeline commits,
and started again on the same ports and folder a few seconds later; the Thrift server stays.
The pipeline must retry on its own and end with the same tables as a run that never failed.
"""
from __future__ import annotations

import re

import pytest

from tests.integration.hbase import test_hbase_exactly_once as exactly_once
from tests.killing import run_through_outage, run_to_end

pytestmark = [pytest.mark.integration, pytest.mark.hbase]


@pytest.fixture(scope="module")
def cluster(hbase_server):
    """The session's HBase when the tests started a real one; else (our test server, or
    HUB_TEST_HBASE naming one we must not kill) a throwaway real one of this module's own."""
    from tests.servers.hbase_thrift import real_hbase

    if hbase_server.cluster is not None:
        yield hbase_server.cluster
        return
    if not real_hbase():
        pytest.skip("HUB_STAND_INS=1: this fault needs a real HBase")
    from tests.servers.hbase import ThrowawayHBase

    own = ThrowawayHBase()
    own.start()
    yield own
    own.stop()


def test_region_server_restarted_during_a_commit(tmp_path, cluster):
    suite = exactly_once.TestHBaseExactlyOnce()
    ref_dir = tmp_path / "reference"
    ref_dir.mkdir()
    pipeline, ref_prefix = suite.pipeline(ref_dir, cluster, rps=0)
    run_to_end(pipeline)
    reference = suite.contents(cluster, ref_prefix)
    assert reference

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    # slow enough (about 10 s of rows) to be still writing when HBase dies
    pipeline, prefix = suite.pipeline(run_dir, cluster, rps=1000)
    err = run_through_outage(pipeline, str(run_dir / "state"), cluster.kill_hbase,
                             cluster.restart_hbase, lambda: cluster.hbase is None,
                             cwd=str(run_dir))
    assert suite.contents(cluster, prefix) == reference
    # it met the dead HBase and went through it: the sink's retry of a call, the runner's
    # restart from the latest checkpoint once the sink gave up, or (when the Thrift server's own
    # HBase client waited the outage out) a commit that lasted through the 2 s outage
    retried = re.search(r"hbase: [^\n]*(; retry \d+ of \d+ in|restarting from the latest "
                        r"checkpoint in)", err)
    waited = [float(s) for s in re.findall(r"hbase: checkpoint \d+: applied \d+ segments in "
                                           r"([\d.]+)s", err)]
    assert retried or max(waited, default=0) >= 2, err
