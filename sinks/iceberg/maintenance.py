"""Maintenance of an Iceberg table while the pipeline runs (every ``maintenance-interval``):

* compaction: pyiceberg (0.12) has no ``rewrite_data_files``, so the sink does it with the
  same copy-on-write machinery as its upserts: per partition, data files smaller than a
  quarter of ``target-file-size`` (when there are at least :data:`MIN_FILES`) are read and written
  again as files of about the target size, in one ``replace``-like overwrite snapshot that
  changes no row;
* snapshot expiry: snapshots older than ``retention`` are expired (pyiceberg's
  ``expire_snapshots``; the current one always stays), then the files only they referenced
  (manifest lists, manifests, data files) are deleted, since pyiceberg leaves them.

Maintenance snapshots carry the app id and the last committed checkpoint id (so the
idempotence check (:mod:`sinks.iceberg.lineage`) still finds it after expiry) and
``hub.maintenance``.  A crash in the middle leaves at most unreferenced new files.
"""
from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import datetime, timezone
from typing import Any

from runtime.faults import crash_point
from sinks.iceberg import merge
from sinks.iceberg.config import IcebergSinkConfig
from sinks.iceberg.lineage import APP_ID, CHECKPOINT_ID, MAINTENANCE, committed_checkpoint

log = logging.getLogger(__name__)

#: Small files of a partition that make a compaction worth its rewrite.
MIN_FILES = 2


def maintain_table(table: Any, config: IcebergSinkConfig, app_id: str, context) -> None:
    """Compact, then expire (see the module doc).  Idempotent; a no-op on a table without
    snapshots of ``app_id`` (this job's)."""
    done = committed_checkpoint(table, app_id)
    if done is None:
        return
    compact(table, config, app_id, done, context.checkpoint_id)
    expire(table.refresh(), config.retention, context.checkpoint_id)


def compact(table: Any, config: IcebergSinkConfig, app_id: str, committed: int,
            checkpoint_id: int) -> int:
    """Rewrite small files per partition; returns the number of files replaced."""
    meta = table.metadata
    small = [f for f in merge.live_files(meta, table.io)
             if f.file_size_in_bytes < config.target_file_size // 4]
    groups: dict[Any, list] = defaultdict(list)
    for f in small:
        groups[(f.spec_id, tuple(f.partition))].append(f)
    chosen = [f for g in groups.values() if len(g) >= MIN_FILES for f in g]
    if not chosen:
        return 0
    started = time.monotonic()
    rewritten = merge.rewrite_all(chosen, meta, table.io, config.target_file_size)
    crash_point("iceberg-compaction-written", checkpoint_id)
    props = {APP_ID: app_id, CHECKPOINT_ID: str(committed), MAINTENANCE: "compaction"}
    with table.transaction() as tx:
        with tx.update_snapshot(snapshot_properties=props).overwrite() as ow:
            for f in chosen:
                ow.delete_data_file(f)
            for f in rewritten:
                ow.append_data_file(f)
    log.info("iceberg: table %s compacted %d small files into %d in %.2fs",
             ".".join(table.name()), len(chosen), len(rewritten), time.monotonic() - started)
    return len(chosen)


def expire(table: Any, retention_s: float, checkpoint_id: int) -> int:
    """Expire snapshots older than ``retention_s`` and delete the files only they
    referenced; returns the number of snapshots expired."""
    cutoff_ms = int((time.time() - retention_s) * 1000)
    current = table.current_snapshot()
    old = [s for s in table.metadata.snapshots
           if s.timestamp_ms < cutoff_ms
           and (current is None or s.snapshot_id != current.snapshot_id)]
    if not old:
        return 0
    old_ids = {s.snapshot_id for s in old}
    keep = [s for s in table.metadata.snapshots if s.snapshot_id not in old_ids]
    gone = _files_of(table, old) - _files_of(table, keep)
    table.maintenance.expire_snapshots().by_ids(sorted(old_ids)).commit()
    crash_point("iceberg-expired", checkpoint_id)
    for path in sorted(gone):
        try:
            table.io.delete(path)
        except FileNotFoundError:
            log.debug("iceberg: %s was deleted before", path)
    log.info("iceberg: table %s expired %d snapshot(s) older than %s, deleted %d file(s)",
             ".".join(table.name()), len(old),
             datetime.fromtimestamp(cutoff_ms / 1000, timezone.utc).isoformat(), len(gone))
    return len(old)


def _files_of(table: Any, snapshots: list) -> set[str]:
    """Manifest lists, manifests and data files the snapshots reference."""
    out: set[str] = set()
    for s in snapshots:
        out.add(s.manifest_list)
        for m in s.manifests(table.io):
            out.add(m.manifest_path)
            for e in m.fetch_manifest_entry(table.io, discard_deleted=True):
                out.add(e.data_file.file_path)
    return out
