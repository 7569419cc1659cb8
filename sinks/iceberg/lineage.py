"""Which checkpoints an Iceberg table holds: the tags the sink puts in snapshot summaries, and
the walk of a table's snapshot ancestry that reads them back.

Every snapshot the sink commits carries :data:`APP_ID` (pipeline, sink and job id: see
:meth:`~sinks.lake.committer.LakeCommitter.app_id`) and :data:`CHECKPOINT_ID`; maintenance
snapshots carry the last committed checkpoint id forward and :data:`MAINTENANCE` (what they
did), so expiring old snapshots never loses it.  Shared by the committer and maintenance.
"""
from __future__ import annotations

from typing import Any

APP_ID = "hub.app-id"
CHECKPOINT_ID = "hub.checkpoint-id"
MAINTENANCE = "hub.maintenance"
#: The table property of the size data files aim at (``target-file-size``).
TARGET_SIZE = "write.target-file-size-bytes"


def committed_checkpoint(table: Any, app_id: str) -> int | None:
    """The checkpoint id of the latest snapshot of ``app_id`` in the ancestry of ``table``'s
    current snapshot, or None.  A fresh start (a new job id, checkpoints numbered from 1
    again) over an earlier run's table finds nothing, as Flink's committer looks for its own
    job id."""
    from pyiceberg.table.snapshots import ancestors_of

    for snap in ancestors_of(table.current_snapshot(), table.metadata):
        summary = snap.summary or {}
        if summary.get(APP_ID) == app_id and summary.get(CHECKPOINT_ID) is not None:
            return int(summary[CHECKPOINT_ID])
    return None


def app_ids(table: Any) -> dict[str, int]:
    """Every app id in the ancestry of ``table``'s current snapshot, with the latest
    checkpoint id it committed."""
    from pyiceberg.table.snapshots import ancestors_of

    out: dict[str, int] = {}
    for snap in ancestors_of(table.current_snapshot(), table.metadata):
        summary = snap.summary or {}
        app, cp = summary.get(APP_ID), summary.get(CHECKPOINT_ID)
        if app is not None and cp is not None and app not in out:
            out[app] = int(cp)
    return out
