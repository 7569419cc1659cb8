"""The Ray cluster a job runs on: connecting, where subtasks go, what every node must see."""
from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import Iterator

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
    a node-local folder fails).  A URL other than ``file://`` (``hdfs://``) is shared.
    (The executor asks its actors instead, :func:`visibility_marker`: a task here starts a
    worker process on every node, seconds of a small node's CPU.)"""
    with visibility_marker(root, len(nodes)) as marker:
        if marker is None:
            return
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
    for n, ref in zip(nodes, refs):
        if ref not in answered:
            log.warning("Ray node %s did not answer within %gs whether it sees %s %s",
                        n["NodeManagerAddress"], ANSWER_S, what, root)
    refuse_blind(root, [(n, seen.get(ref)) for n, ref in zip(nodes, refs)], len(nodes), what)


@contextlib.contextmanager
def visibility_marker(root: str, nodes: int) -> Iterator[str | None]:
    """A file under local ``root`` for the nodes to look for (removed at the end), or None
    when there is nothing to check: one node, or a URL other than ``file://`` (shared)."""
    if nodes < 2 or ("://" in root and not root.startswith("file://")):
        yield None
        return
    marker = os.path.join(root.removeprefix("file://"), f".ray-visible-{uuid.uuid4().hex}")
    with open(marker, "w"):
        pass
    try:
        yield marker
    finally:
        os.remove(marker)


def refuse_blind(root: str, seen: list[tuple[dict, bool | None]], nodes: int,
                 what: str = "checkpoint.dir") -> None:
    """One line (:class:`ConfigError`) naming the nodes that answered they do not see
    ``root`` (``seen``: node, its answer; None: no answer, no proof either way)."""
    blind = sorted({n["NodeManagerAddress"] + ":" + str(n["NodeManagerPort"])
                    for n, sees in seen if sees is False})
    if blind:
        raise ConfigError(
            f"{what} {root} is node-local: Ray node(s) {', '.join(blind)} of the "
            f"{nodes}-node cluster do not see it (use a folder every node mounts, or "
            f"hdfs://)", key=what)
