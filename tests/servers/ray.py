"""A throwaway two-node Ray cluster on this machine.  There is no docker-compose variant
(no ``HUB_TEST_*`` variable): a cluster's nodes must run this checkout's Python with the hub
installed and see the tests' temp folders, which no stock Ray image does.

``ray start --head`` plus a second ``ray start --address`` on other ports, one CPU each, each
with its own session folder under one temp folder, each ``--block``ed in its own process
group: :meth:`ThrowawayRayCluster.kill_worker_node` is ``kill -9`` of the second node's whole
group (raylet and its workers), and stopping kills both groups.  ``ray stop`` is never used:
it stops every Ray of the machine.  The nodes get this checkout on ``PYTHONPATH`` (the actors
import the contract connectors of ``tests/``).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from tests.servers.common import free_port, shared_server, wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@dataclass(frozen=True)
class RayCluster:
    address: str
    #: the throwaway cluster (its nodes are the tests' to kill)
    owner: ThrowawayRayCluster


def _ports(n: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


class ThrowawayRayCluster:
    def __init__(self, nodes: int = 2, object_store_mb: int = 300, pin: bool = False) -> None:
        #: each node's processes on one core of this machine (node i on core i mod cores):
        #: "one CPU per node" as a real limit, not only Ray's resource count (benchmarks)
        self.pin = pin
        self.dir = tempfile.mkdtemp(prefix="hub-ray-")
        self.nodes = nodes
        self.object_store = object_store_mb * 1024 * 1024
        self.port = free_port()
        self.procs: list[subprocess.Popen] = []
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (ROOT, os.environ.get("PYTHONPATH")) if p),
            RAY_USAGE_STATS_ENABLED="0", RAY_ADDRESS="",
            # no metrics: no exporter agent to feed from every process (nothing reads them)
            RAY_enable_metrics_collection="0",
            # Ray starts its workers (our actors) at nice 15: next to the test suite's other
            # servers and workers they got a fraction of a core on a loaded machine; these
            # nodes stand for machines of their own, so their actors run at normal priority
            RAY_worker_niceness="0")

    def _node(self, head: bool, index: int, private: str | None = None) -> subprocess.Popen:
        ray = os.path.join(os.path.dirname(sys.executable), "ray")
        nm, om, agent_grpc, agent_http, metrics, runtime_env, dashboard = _ports(7)
        cmd = [ray, "start", "--block", "--num-cpus", "1", "--node-ip-address", "127.0.0.1",
               "--object-store-memory", str(self.object_store),
               "--node-manager-port", str(nm), "--object-manager-port", str(om),
               "--dashboard-agent-grpc-port", str(agent_grpc),
               "--dashboard-agent-listen-port", str(agent_http),
               "--metrics-export-port", str(metrics), "--runtime-env-agent-port",
               str(runtime_env), "--min-worker-port", "0", "--max-worker-port", "0",
               "--resources", json.dumps({f"hub-node-{index}": 1})]
        if head:
            # a node killed is declared dead after ~5 s of missed health checks (Ray's default:
            # ~15 s), so that a test's restart and the next test find the cluster as it is
            cmd += ["--system-config", json.dumps({"health_check_period_ms": 1000,
                                                   "health_check_failure_threshold": 5})]
            # the head runs a dashboard process even without the dashboard: its port too is
            # a free one, not 8265, so that it never meets another Ray of the machine
            cmd += ["--head", "--port", str(self.port), "--include-dashboard", "false",
                    "--dashboard-port", str(dashboard), "--temp-dir",
                    os.path.join(self.dir, "tmp")]
        else:
            cmd += ["--address", self.address]
        if self.pin:  # the raylet and every worker it starts inherit the affinity
            cmd = ["taskset", "-c", str(index % (os.cpu_count() or 1))] + cmd
        if private is not None:  # this node alone sees an empty tmpfs at ``private``
            cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                   'mount -t tmpfs hub-ray-private "$0" && exec "$@"', private] + cmd
        log = open(os.path.join(self.dir, f"node-{index}.log"), "wb")
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                start_new_session=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _alive_nodes(self) -> int:
        import ray  # noqa: PLC0415 - the tests' own connection, when they made one

        if ray.is_initialized():
            return sum(1 for n in ray.nodes() if n["Alive"])
        out = subprocess.run(
            [sys.executable, "-c", "import ray; ray.init(address=%r, logging_level='ERROR');"
             "print(sum(1 for n in ray.nodes() if n['Alive']))" % self.address],
            capture_output=True, text=True, env=self.env, timeout=60)
        return int(out.stdout.strip() or 0) if out.returncode == 0 else 0

    def start(self) -> RayCluster:
        self.procs.append(self._node(True, 0))
        for i in range(1, self.nodes):
            time.sleep(2)  # the head's GCS first
            self.procs.append(self._node(False, i))
        wait_until(lambda: self._alive_nodes() == self.nodes, 120,
                   f"a {self.nodes}-node Ray cluster at {self.address} (logs in {self.dir})")
        return RayCluster(self.address, self)

    def add_node(self) -> None:
        """One more worker node (after :meth:`kill_worker_node`: the cluster whole again, once
        the node killed is no longer listed alive)."""
        wait_until(lambda: self._alive_nodes() < self.nodes, 60,
                   f"the Ray node killed at {self.address} declared dead (logs in {self.dir})")
        self.procs.append(self._node(False, len(self.procs)))
        wait_until(lambda: self._alive_nodes() == self.nodes, 120,
                   f"{self.nodes} live Ray nodes at {self.address} (logs in {self.dir})")

    def ensure_whole(self) -> None:
        """A node lost since the start (a raylet whose agent failed on a loaded machine) is
        replaced, so that a test that spreads subtasks over both nodes gets both."""
        if self._alive_nodes() < self.nodes:
            self.add_node()

    def add_private_node(self, folder: str) -> subprocess.Popen:
        """One more node that sees its own empty ``folder`` (a tmpfs in its own mount
        namespace: a node-local folder, as on another machine); root only."""
        proc = self._node(False, len(self.procs), private=folder)
        self.procs.append(proc)
        self.nodes += 1
        wait_until(lambda: self._alive_nodes() == self.nodes, 120,
                   f"{self.nodes} live Ray nodes at {self.address} (logs in {self.dir})")
        return proc

    def remove_node(self, proc: subprocess.Popen) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        self.procs.remove(proc)
        self.nodes -= 1
        wait_until(lambda: self._alive_nodes() == self.nodes, 120,
                   f"{self.nodes} live Ray nodes at {self.address} (logs in {self.dir})")

    def kill_worker_node(self) -> None:
        """``kill -9`` of the last node's raylet and every worker it started: its process group
        and every process under it (Ray puts each worker in a process group of its own, and a
        worker whose raylet died may go on serving calls for a while)."""
        proc = [p for p in self.procs if p.poll() is None][-1]
        tree = _descendants(proc.pid)
        os.killpg(proc.pid, signal.SIGKILL)
        for pid in tree:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()

    def stop(self) -> None:
        for proc in reversed(self.procs):
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    proc.wait(timeout=10)
                    break
                except subprocess.TimeoutExpired:
                    continue
        shutil.rmtree(self.dir, ignore_errors=True)


def _descendants(pid: int) -> list[int]:
    """Every process under ``pid`` (from /proc: children, their children...)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                # the field after the ")" closing the command name: state, then the parent
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def from_env() -> RayCluster | None:
    return None  # see the module's docstring


def ray_cluster() -> RayCluster:
    """The session's cluster (one per test process)."""
    return shared_server("ray", from_env, ThrowawayRayCluster)
