"""Scale-out on Ray: ``hub run`` with ``[pipeline] executor = "ray"`` on a two-node Ray cluster
started here (tests/servers/ray.py: one CPU per node), parallelism 1 (one subtask pair, one
node) against 2 (a pair on each node), side by side in the same run with the local executor
and with the Ray executor's operator chaining off (``operator-chaining = false``: source and
sink subtask in two actors, every batch crossing between them) and on (the default: both in
one actor, batches never leaving it).

    python bench/ray_bench.py [--rows 4000000] [--mysql-rows 1000000] [--workloads datagen,mysql]
                              [--modes local,ray-unchained,ray] [--rounds 1] [--address HOST:PORT]

Workloads, both into Parquet files (files sink): ``datagen`` (``--rows`` rows) and ``mysql``
(a snapshot of ``--mysql-rows`` rows of bench/mysql_bench.py's table, startup-mode
initial-only, on a throwaway MariaDB).  Prints rows/s from each run's own summary line, the
machine's 1-minute load average before each run, the CPU seconds of the machine's processes
during the run by role (the ``hub run`` driver, the job master, the subtasks' actors, Ray's
own services, MariaDB, everything else), and the speed-up of parallelism 2 over 1.
Both nodes share this machine (two cores, other processes too): the figure says how the data
path scales, on a machine others load too.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hubrun import datagen_pipeline, run_hub  # noqa: E402

SINK = '[sink]\ntype = "files"\npath = "{lake}"\nformat = "parquet"\n'
MODES = {"local": 'executor = "local"\n',
         "ray-unchained": 'executor = "ray"\nray-address = "{address}"\n'
                          'operator-chaining = false\n',
         "ray": 'executor = "ray"\nray-address = "{address}"\n'}


def pipeline_text(workload: str, mode: str, address: str | None, p: int, rows: int,
                  work: str, mysql) -> str:
    name = f"ray-bench-{workload}-{mode}-{p}"
    sink = SINK.format(lake=f"{work}/lake")
    if workload == "datagen":
        text = datagen_pipeline(name, p, f"{work}/state", rows, sink)
    else:
        from mysql_bench import PIPELINE  # noqa: PLC0415

        text = PIPELINE.format(p=p, dir=work, connection=mysql.source_toml(), sink=sink)
        text = text.replace('name = "mysql-bench"', f'name = "{name}"', 1)
    extra = MODES[mode].format(address=address)
    return text.replace(f"parallelism = {p}\n", f"parallelism = {p}\n{extra}", 1)


class CpuSplit:
    """CPU seconds of every process of the machine while ``fn`` runs, by role (:meth:`role`;
    ``others``: the rest of the machine, other users' work included).  Sampled every 0.2 s:
    a process that lives shorter than that (none of a run's) is missed."""

    def __init__(self, mysql_port: int | None) -> None:
        self.seen: dict[int, tuple[str, float]] = {}
        self.start: dict[int, float] = {}
        self.mysql_port = mysql_port
        self.ours: dict[int, bool] = {}

    def _ours(self, pid: int) -> bool:
        """``pid`` runs this venv's Ray (a raylet of the bench's cluster, not another's)."""
        import psutil  # noqa: PLC0415

        if pid not in self.ours:
            try:
                self.ours[pid] = sys.prefix in " ".join(psutil.Process(pid).cmdline())
            except psutil.Error:
                self.ours[pid] = False
        return self.ours[pid]

    def role(self, proc, cmd: str) -> str:
        if "ray::" in cmd and "Agent" not in cmd and self._ours(proc.ppid()):
            # a worker process of this cluster's raylets: an actor; the job's control
            # (coordinator, committer) apart from the subtasks
            return "job master" if "JobMaster" in cmd else "actors"
        if "mariadbd" in cmd and self.mysql_port and f"--port={self.mysql_port}" in cmd:
            return "MariaDB"  # (a child of this process too)
        if proc.ppid() == os.getpid():  # run_hub's child
            return "driver"
        if sys.prefix in cmd or "ray::" in cmd:  # this venv's: raylet, GCS, agents, monitors
            return "ray services"
        return "others"

    def _sample(self, first: bool = False) -> None:
        import psutil  # noqa: PLC0415 - the test extra

        for proc in psutil.process_iter(["cmdline", "cpu_times"]):
            times = proc.info["cpu_times"]
            if times is None:
                continue
            cpu = times.user + times.system
            if first:
                self.start[proc.pid] = cpu
            try:
                cmd = " ".join(proc.info["cmdline"] or []) or proc.name()
                role = self.role(proc, cmd)
            except psutil.Error:  # gone meanwhile
                continue
            self.seen[proc.pid] = (role, cpu)

    def run(self, fn):
        import threading  # noqa: PLC0415

        self._sample(first=True)
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.2):
                self._sample()
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            return fn()
        finally:
            done.set()
            sampler.join()
            self._sample()

    def line(self, wall_s: float) -> str:
        by_role: dict[str, float] = {}
        for pid, (role, cpu) in self.seen.items():
            by_role[role] = by_role.get(role, 0.0) + cpu - self.start.get(pid, 0.0)
        total = sum(by_role.values())
        parts = ", ".join(f"{role} {by_role[role]:.1f}s" for role in
                          ("driver", "job master", "actors", "ray services", "MariaDB",
                           "others")
                          if role in by_role)
        return f"    CPU over the {wall_s:.1f}s wall: {parts} ({total / wall_s:.2f} of 2 cores)"


def run_once(workload: str, mode: str, address: str | None, p: int, rows: int, work: str,
             mysql) -> dict:
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    path = f"{work}/pipeline.toml"
    with open(path, "w") as f:
        f.write(pipeline_text(workload, mode, address, p, rows, work, mysql))
    load = os.getloadavg()[0]
    cpu = CpuSplit(mysql.port if mysql is not None else None)
    r = cpu.run(lambda: run_hub(path))
    return {"rows": r.rows, "secs": r.run_s, "rate": r.rows / r.run_s, "wall": r.wall_s,
            "load": load, "cpu": cpu.line(r.wall_s)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=4_000_000, help="datagen rows")
    ap.add_argument("--mysql-rows", type=int, default=1_000_000)
    ap.add_argument("--workloads", default="datagen,mysql")
    ap.add_argument("--modes", default="local,ray-unchained,ray")
    ap.add_argument("--rounds", type=int, default=1, help="runs of each parallelism (the "
                    "speed-up of the best and of the median rates)")
    ap.add_argument("--pin-nodes", action="store_true", help="the throwaway cluster's node i "
                    "on core i only (taskset): one CPU per node as a real limit; p=1 then "
                    "gets one core, as on a cluster of one-core nodes")
    ap.add_argument("--address", default=None, help="a Ray cluster (default: a throwaway "
                    "two-node one on this machine)")
    args = ap.parse_args()
    modes = args.modes.split(",")
    owners = []
    address = args.address
    mysql = None
    work = tempfile.mkdtemp(prefix="ray-bench-")
    try:
        if address is None and any(m.startswith("ray") for m in modes):
            from tests.servers.ray import ThrowawayRayCluster

            owners.append(ThrowawayRayCluster(pin=args.pin_nodes))
            address = owners[-1].start().address
        for workload in args.workloads.split(","):
            rows = args.rows
            if workload == "mysql":
                from mysql_bench import count, fill  # noqa: PLC0415
                from tests.servers import mariadb  # noqa: PLC0415

                mysql = mariadb.from_env()
                if mysql is None:
                    owners.append(mariadb.ThrowawayMariaDB())
                    mysql = owners[-1].start()
                rows = args.mysql_rows
                if count(mysql) != rows:
                    fill(mysql, rows)
            for mode in modes:
                rates: dict[int, list[float]] = {1: [], 2: []}
                for _ in range(args.rounds):  # p=1 and p=2 in turn: a load meets both
                    for p in (1, 2):
                        r = run_once(workload, mode, address if mode != "local" else None, p,
                                     rows, f"{work}/{workload}-{mode}-{p}", mysql)
                        rates[p].append(r["rate"])
                        print(f"{workload:7s} {mode:13s} p={p}: {r['rows']:,} rows in "
                              f"{r['secs']:.1f}s ({r['rate']:,.0f} rows/s; wall "
                              f"{r['wall']:.1f}s; load {r['load']:.1f})", flush=True)
                        print(r["cpu"], flush=True)
                line = f"{workload:7s} {mode:13s} speed-up p=2 / p=1: "
                if args.rounds > 1:
                    line += f"best {max(rates[2]) / max(rates[1]):.2f}x, median " \
                            f"{statistics.median(rates[2]) / statistics.median(rates[1]):.2f}x"
                else:
                    line += f"{rates[2][0] / rates[1][0]:.2f}x"
                print(line, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        for owner in reversed(owners):
            owner.stop()


if __name__ == "__main__":
    main()
