"""The Ray executor on a real two-node Ray cluster (tests/servers/ray.py): what only a
cluster shows (the contract suite, tests/contract, runs on it too).

* ``kill -9`` of the worker node's processes (its raylet and every actor on it) in the middle
  of a job: the job master's restart strategy restores from the latest completed checkpoint
  on the node left (the job master, on the head node, lives on), and the sink holds every row
  of the source exactly once.
* ``kill -9`` of the job master's process: its subtasks' actors go with it, the driver's
  restart strategy makes a new job master from the latest completed checkpoint, exactly once.
* The checkpoint storage check: a folder every node sees passes (both nodes here share the
  machine's disk); subtasks are spread over both nodes; the enumerator runs in an actor.
"""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest

pytest.importorskip("ray")

import ray  # noqa: E402

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


class Restarting:
    """A job run as ``hub run`` runs it on Ray, in a thread: the driver's restart strategy
    over job masters that restart the job themselves, under one policy; the executors made
    (one per job master) and the restart lines of each level are kept."""

    def __init__(self, address: str, job: Job):
        self.job = job
        self.made: list[RayExecutor] = []
        self.inner: list[str] = []  # said by the job master's restart strategy
        self.outer: list[str] = []  # said by the driver's
        backoff = Backoff(0.5, 2.0, 5)

        def new(m: PipelineMetrics) -> RayExecutor:
            self.made.append(RayExecutor(metrics=m, address=address, restart=backoff,
                                         notify=self.inner.append))
            return self.made[-1]

        self.strategy = RestartStrategy(new, backoff, job.storage,
                                        PipelineMetrics(job.parallelism),
                                        notify=self.outer.append)
        self.result: list = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result.append(self.strategy.run(self.job))
        except BaseException as exc:  # noqa: BLE001 - the test says it
            self.result.append(exc)

    def wait_mid_way(self, store: FileStore) -> RayExecutor:
        """Once a checkpoint completed and rows were committed: the executor running."""
        deadline = time.monotonic() + 60
        while self.job.storage.latest() is None or not store.rows() or \
                self.strategy.current is None or len(self.strategy.current.nodes) < 2:
            assert time.monotonic() < deadline and self.thread.is_alive(), (
                f"no checkpoint in 60 s: {self.result}")
            time.sleep(0.05)
        return self.strategy.current

    def end(self) -> object:
        self.thread.join(timeout=180)
        assert not self.thread.is_alive(), "the job did not end within 180 s of the kill"
        assert self.result and not isinstance(self.result[0], BaseException), self.result
        return self.result[0]


def test_kill_9_of_the_worker_node_restores_exactly_once(tmp_path, ray_address):
    owner = ray_cluster().owner
    owner.ensure_whole()
    store = FileStore(str(tmp_path / "sink"))
    job = Job("kill", RangeSource(4, 60, 20, delay_s=0.02), FileSink(store.root),
              CheckpointStorage(str(tmp_path / "state")), parallelism=2,
              checkpoint_interval_s=0.2, checkpoint_timeout_s=30)
    run = Restarting(ray_address, job)
    try:
        executor = run.wait_mid_way(store)
        assert len(set(executor.nodes)) == 2, "subtasks not on both nodes: the kill proves nothing"
        owner.kill_worker_node()
        result = run.end()
    finally:
        owner.add_node()  # whole again for the tests after this one
    assert result.status == "finished"
    # restored by the job master (on the head node, alive), not by a new one
    assert run.inner and not run.outer and len(run.made) == 1, (run.inner, run.outer)
    assert store.rows() == expected_rows(4, 60, 20)


def test_kill_9_of_the_job_master_restores_exactly_once(tmp_path, ray_address):
    ray_cluster().owner.ensure_whole()
    store = FileStore(str(tmp_path / "sink"))
    job = Job("kill-master", RangeSource(4, 60, 20, delay_s=0.02), FileSink(store.root),
              CheckpointStorage(str(tmp_path / "state")), parallelism=2,
              checkpoint_interval_s=0.2, checkpoint_timeout_s=30)
    run = Restarting(ray_address, job)
    executor = run.wait_mid_way(store)
    pid = ray.get(executor.master.pid.remote())
    assert pid != os.getpid()
    os.kill(pid, signal.SIGKILL)
    result = run.end()
    assert result.status == "finished"
    # the driver made a new job master, which restored the job from the latest checkpoint
    assert run.outer and len(run.made) == 2, (run.inner, run.outer)
    assert "job master" in run.outer[0], run.outer
    assert store.rows() == expected_rows(4, 60, 20)


def test_the_job_masters_counters_reach_the_driver_while_it_runs(tmp_path, ray_address):
    store = FileStore(str(tmp_path / "sink"))
    metrics = PipelineMetrics(2)
    executor = RayExecutor(metrics=metrics, address=ray_address)
    job = Job("counted", RangeSource(4, 60, 20, delay_s=0.02), FileSink(store.root),
              CheckpointStorage(str(tmp_path / "state")), parallelism=2,
              checkpoint_interval_s=0.2)
    seen: list[tuple[int, int]] = []  # (rows out, checkpoints completed) while it ran

    def watch() -> None:
        while not done.is_set():
            rows = sum(out for _, out in metrics.totals().values())
            seen.append((rows, metrics.checkpoints_completed))
            time.sleep(0.1)

    done = threading.Event()
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        result = executor.run(job)
    finally:
        done.set()
        watcher.join()
    total = 4 * 60 * 20
    # counted here while the job ran (some rows, a checkpoint), not only at its end
    assert any(0 < rows < total and cps > 0 for rows, cps in seen), seen[-5:]
    assert sum(out for _, out in metrics.totals().values()) == total
    assert metrics.last_checkpoint.checkpoint_id == result.last_checkpoint
    assert metrics.checkpoints_completed >= 2  # the interval's and the final one
    assert executor.master is not None and len(executor.sinks) == 2


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
