"""A fault only a real server allows: the OpenSearch node killed (kill -9) while a datagen ->
elasticsearch exactly-once pipeline commits (right after a checkpoint completed, while its
write-ahead log is applied), and started again on the same ports and data folder.  The
pipeline must retry on its own, with backoff, say what it waits for, and end with the same
documents as a run that never failed (the reference run, in the same test: the server of
test_es_exactly_once's reference may be another one)."""
from __future__ import annotations

import re

import pytest

from tests.integration.elasticsearch import test_es_exactly_once as es_suite
from tests.killing import run_through_outage, run_to_end

pytestmark = [pytest.mark.integration, pytest.mark.elasticsearch]


class RestartSuite(es_suite.TestElasticsearchExactlyOnce):
    """The kill suite's pipeline and reading (not its tests: no Test prefix), with extra sink
    options."""

    extra = ""

    def sink(self, server, prefix: str, delivery: str) -> str:
        return super().sink(server, prefix, delivery) + self.extra


@pytest.fixture(scope="module")
def node(elasticsearch_server):
    """The session's OpenSearch node when the tests started it; else (HUB_TEST_ELASTICSEARCH
    names one we must not stop) a throwaway one of this module's own."""
    if elasticsearch_server.node is not None:
        yield elasticsearch_server.node
        return
    from tests.servers.elasticsearch import ElasticsearchService
    from tests.servers.opensearch import ThrowawayOpenSearch

    own = ThrowawayOpenSearch().start()
    yield ElasticsearchService(own.url, {}, own).node
    own.stop()


@pytest.fixture(scope="module")
def service(node):
    from tests.servers.elasticsearch import ElasticsearchService

    return ElasticsearchService(node.url)


@pytest.mark.parametrize("retries", ["client", "runner"])
def test_opensearch_restarted_during_a_commit(tmp_path_factory, node, service, retries):
    """``client``: the sink's client retries the request (``max-retries``, backoff from 0.2 s
    doubling) and outlasts the restart; ``runner``: ``max-retries = 0``, so the first refused
    connection is a transient error and the runner restarts the pipeline from its latest
    checkpoint (backoff from 1 s doubling), replaying the write-ahead log."""
    suite = RestartSuite()
    if retries == "runner":
        suite.extra = "max-retries = 0\n"
    d = tmp_path_factory.mktemp("reference")
    pipeline, prefix = suite.pipeline(d, service, rps=0)
    run_to_end(pipeline)
    reference = suite.contents(service, prefix)
    assert 0 < len(reference) < 2 * 5000

    d = tmp_path_factory.mktemp("restart")
    pipeline, prefix = suite.pipeline(d, service, rps=2000)
    state = str(d / "state")
    err = run_through_outage(pipeline, state, node.kill, node.restart,
                             lambda: node.proc is None)
    assert suite.contents(service, prefix) == reference
    # it met the dead node, said so, and waited with a growing backoff (the client's retries of
    # the request, then, if the node is still away, the runner's restarts from the latest
    # checkpoint) until it could go on
    if retries == "client":
        # (one sequence of retries per segment being applied: they are applied concurrently)
        waits = {(int(n), float(s)) for n, s in re.findall(
            r"elasticsearch: [^:\n]+: ConnectionError: [^;\n]*; retry (\d+) of \d+ in "
            r"([0-9.]+)s", err)}
        assert {(1, 0.2), (2, 0.4), (3, 0.8)} <= waits, err
        assert all(s == min(10.0, 0.2 * 2 ** (n - 1)) for n, s in waits), err
    else:
        assert re.search(r"elasticsearch: .*ConnectionError.*: restarting from the latest "
                         r"checkpoint in 1.0s \(attempt 1 of", err), err
        waits = [(float(d), int(n)) for d, n in re.findall(
            r"restarting from the latest checkpoint in ([0-9.]+)s \(attempt (\d+) of", err)]
        assert len(waits) >= 2 and waits == [(2.0 ** i, i + 1) for i in range(len(waits))], err
