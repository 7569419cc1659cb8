"""The Ray cluster a job runs on: connecting, where subtasks go, what every node must see."""
from __future__ import annotations

import logging
import os
import uuid

from runtime.errors import ConfigError, TransientError
from runtime.executor.ray._ray import ray

log = logging.getLogger("hub.runtime")

#: How long a node has to say whether it sees the checkpoint storage.
ANSWER_S = 15.0


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
        # a node that does not answer in time (lost a moment ago, still listed alive) is no
        # proof either way: only a node that answers "not there" is refused
        answered, _ = ray.wait(refs, num_returns=len(refs), timeout=ANSWER_S)
        seen = {}
        for ref in answered:
            try:
                seen[ref] = ray.get(ref)
            except ray.exceptions.RayError as exc:  # the node went away meanwhile
                log.warning("a Ray node could not say whether it sees %s %s: %s", what, root,
                            str(exc).splitlines()[0])
    finally:
        os.remove(marker)
    for n, ref in zip(nodes, refs):
        if ref not in answered:
            log.warning("Ray node %s did not answer within %gs whether it sees %s %s",
                        n["NodeManagerAddress"], ANSWER_S, what, root)
    blind = [n["NodeManagerAddress"] + ":" + str(n["NodeManagerPort"])
             for n, ref in zip(nodes, refs) if seen.get(ref) is False]
    if blind:
        raise ConfigError(
            f"{what} {root} is node-local: Ray node(s) {', '.join(blind)} of the "
            f"{len(nodes)}-node cluster do not see it (use a folder every node mounts, or "
            f"hdfs://)", key=what)
