"""The Ray cluster a job runs on: connecting, where subtasks go, what every node must see."""
from __future__ import annotations

import logging
import os
import uuid

from runtime.errors import ConfigError, TransientError
from runtime.executor.ray._ray import ray

log = logging.getLogger("hub.runtime")


def connect(address: str | None) -> None:
    """Join the cluster at ``address`` (default: ``RAY_ADDRESS``, else a local one started
    here), once per process; a driver already connected stays so."""
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=True,
                 include_dashboard=False)
    except ConnectionError as exc:
        raise TransientError(f"pipeline.ray-address {address}: no Ray cluster answers: {exc}"
                             ) from None


def alive_nodes() -> list[dict]:
    """The cluster's live nodes, in a stable order (node id)."""
    return sorted((n for n in ray.nodes() if n.get("Alive")), key=lambda n: n["NodeID"])


@ray.remote(num_cpus=0)
def _sees(path: str) -> bool:
    return os.path.exists(path)


def check_shared(root: str, nodes: list[dict], what: str = "checkpoint.dir") -> None:
    """Refuse, in one line, a local ``root`` that some node of a multi-node cluster does not
    see.  Seeing is tested, not guessed from host names: a marker file written here must be
    visible from a task on every node (nodes on one machine, or mounting one NFS share, pass;
    a node-local folder fails).  A URL other than ``file://`` (``hdfs://``) is shared."""
    if len(nodes) < 2 or ("://" in root and not root.startswith("file://")):
        return
    local = root.removeprefix("file://")
    marker = os.path.join(local, f".ray-visible-{uuid.uuid4().hex}")
    with open(marker, "w"):
        pass
    try:
        refs = [_sees.options(scheduling_strategy=ray.util.scheduling_strategies
                              .NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
                              ).remote(marker) for n in nodes]
        seen = ray.get(refs, timeout=60)
    finally:
        os.remove(marker)
    blind = [n["NodeManagerAddress"] + ":" + str(n["NodeManagerPort"])
             for n, ok in zip(nodes, seen) if not ok]
    if blind:
        raise ConfigError(
            f"{what} {root} is node-local: Ray node(s) {', '.join(blind)} of the "
            f"{len(nodes)}-node cluster do not see it (use a folder every node mounts, or "
            f"hdfs://)", key=what)
