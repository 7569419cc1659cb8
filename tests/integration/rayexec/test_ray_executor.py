"""The Ray executor on a real two-node Ray cluster (tests/servers/ray.py): what only a
cluster shows (the contract suite, tests/contract, runs on it too).

* ``kill -9`` of the worker node's processes (its raylet and every actor on it) in the middle
  of a job: the restart strategy restores from the latest completed checkpoint on the node
  left, and the sink holds every row of the source exactly once.
* The checkpoint storage check: a folder every node sees passes (both nodes here share the
  machine's disk); subtasks are spread over both nodes; the enumerator runs in an actor.
"""
from __future__ import annotations

import os
import threading
import time

import pytest

pytest.importorskip("ray")

from runtime.checkpoint.storage import CheckpointStorage  # noqa: E402
from runtime.errors import ConfigError  # noqa: E402
from runtime.executor.job import Job  # noqa: E402
from runtime.executor.ray.executor import RayExecutor  # noqa: E402
from runtime.executor.restart import RestartStrategy  # noqa: E402
from runtime.metrics import PipelineMetrics  # noqa: E402
from runtime.retry import Backoff  # noqa: E402
from tests.contract.connectors import FileSink, FileStore, RangeSource, expected_rows  # noqa: E402
from tests.integration.rayexec.sources import WhereRangeSource  # noqa: E402
from tests.servers.ray import ray_cluster  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.ray]


@pytest.fixture(scope="module")
def ray_address() -> str:
    return ray_cluster().address


@pytest.mark.parametrize("chain", [True, False], ids=["chained", "unchained"])
def test_subtasks_spread_over_both_nodes_and_the_shared_folder_passes(tmp_path, ray_address,
                                                                      chain):
    store = FileStore(str(tmp_path / "sink"))
    executor = RayExecutor(metrics=PipelineMetrics(2), address=ray_address, chain=chain)
    pid_file = str(tmp_path / "enumerator.pid")
    job = Job("spread", WhereRangeSource(2, 3, 10, pid_file=pid_file), FileSink(store.root),
              CheckpointStorage(str(tmp_path / "state")), parallelism=2,
              checkpoint_interval_s=3600)
    assert executor.run(job).status == "finished"
    assert store.rows() == expected_rows(2, 3, 10)
    with open(pid_file) as f:  # the enumerator ran in an actor (reader 0's), not here
        assert int(f.read()) != os.getpid()
    nodes = executor.nodes  # the node of each actor
    if chain:  # subtask i's source and sink in one actor
        assert len(nodes) == 2 and len(set(nodes)) == 2
    else:  # an actor each, pair i on one node: sink then source
        assert len(nodes) == 4 and nodes[0::2] == nodes[1::2] and len(set(nodes)) == 2
    # both nodes saw the checkpoint storage: the run's own check (the actors' answers) passed


def test_kill_9_of_the_worker_node_restores_exactly_once(tmp_path, ray_address):
    owner = ray_cluster().owner
    owner.ensure_whole()
    store = FileStore(str(tmp_path / "sink"))
    storage = CheckpointStorage(str(tmp_path / "state"))
    lines: list[str] = []
    strategy = RestartStrategy(lambda m: RayExecutor(metrics=m, address=ray_address),
                               Backoff(0.5, 2.0, 5), storage, PipelineMetrics(2),
                               notify=lines.append)
    job = Job("kill", RangeSource(4, 60, 20, delay_s=0.02), FileSink(store.root), storage,
              parallelism=2, checkpoint_interval_s=0.2, checkpoint_timeout_s=30)
    result: list = []
    def run() -> None:
        try:
            result.append(strategy.run(job))
        except BaseException as exc:  # noqa: BLE001 - the test says it
            result.append(exc)
    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while storage.latest() is None or not store.rows():  # mid-way, a checkpoint behind
            assert time.monotonic() < deadline and runner.is_alive(), "no checkpoint in 60 s"
            time.sleep(0.05)
        owner.kill_worker_node()
        runner.join(timeout=180)
        assert not runner.is_alive(), "the job did not end within 180 s of the kill"
    finally:
        owner.add_node()  # whole again for the tests after this one
    assert result and not isinstance(result[0], BaseException), result
    assert result[0].status == "finished"
    assert lines, "the kill did not make the job restart"
    assert store.rows() == expected_rows(4, 60, 20)


def test_a_checkpoint_folder_one_node_does_not_see_is_refused_in_one_line(tmp_path, ray_address):
    owner = ray_cluster().owner
    if os.geteuid() != 0:
        pytest.skip("needs root: the test starts a node in its own mount namespace")
    private = tmp_path / "state"
    private.mkdir()
    node = owner.add_private_node(str(private))
    try:
        store = FileStore(str(tmp_path / "sink"))
        # parallelism 3: an actor on each node (the actors are asked what they see)
        job = Job("blind", RangeSource(3, 3, 10), FileSink(store.root),
                  CheckpointStorage(str(private)), parallelism=3)
        with pytest.raises(ConfigError) as info:
            RayExecutor(metrics=PipelineMetrics(3), address=ray_address).run(job)
        line = str(info.value)
        assert "\n" not in line and "is node-local" in line and str(private) in line, line
        assert "3-node cluster" in line, line
    finally:
        owner.remove_node(node)
