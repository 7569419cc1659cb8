"""The Ray cluster a job runs on: connecting, where subtasks go, what every node must see."""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import uuid
from collections.abc import Iterator

from runtime.errors import ConfigError, TransientError
from runtime.executor.ray._ray import ray


def connect(address: str | None) -> None:
    """Join the cluster at ``address`` (default: ``RAY_ADDRESS``, else a local one started
    here), once per process; a driver already connected stays so."""
    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or None
    # ray.init takes SIGTERM (and its core worker's signal handlers SIGINT's) for its own
    # exit: the process's handlers (hub run's: stop with a final checkpoint) are put back
    own = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)} \
        if threading.current_thread() is threading.main_thread() else {}
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=True,
                 include_dashboard=False)
    except ConnectionError as exc:
        raise TransientError(f"pipeline.ray-address {address}: no Ray cluster answers: {exc}"
                             ) from None
    finally:
        for sig, handler in own.items():
            if handler is not None:
                signal.signal(sig, handler)


def alive_nodes() -> list[dict]:
    """The cluster's live nodes, in a stable order (node id)."""
    return sorted((n for n in ray.nodes() if n.get("Alive")), key=lambda n: n["NodeID"])


@contextlib.contextmanager
def visibility_marker(root: str, nodes: int) -> Iterator[str | None]:
    """A file under local ``root`` for the nodes to look for (removed at the end), or None
    when there is nothing to check: one node, or a URL other than ``file://`` (shared).
    Seeing is tested, not guessed from host names: the subtasks' actors say whether they see
    it (``SubtaskActor.where``; nodes on one machine, or mounting one NFS share, pass; a
    node-local folder fails), then :func:`refuse_blind`."""
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
