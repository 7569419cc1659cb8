"""Binlog coordinates of change events, columnar: what ``ChangeBatch.positions`` holds for
batches of the MySQL source (Debezium's MySQL ``source`` fields).

The shape, for consumers (the debezium-json writer): a ``pyarrow.StructArray``, one entry per
event of the batch, with the fields

* ``server_id`` (int64): the server that wrote the event (the binlog event header's);
* ``file`` (string): the binlog file;
* ``pos`` (int64): where the rows event holding the change starts in that file;
* ``row`` (int32): the change's row within that rows event (0-based);
* ``gtid`` (string, null without GTIDs): the transaction's GTID (MySQL ``uuid:n``, MariaDB
  ``domain-server-seq``).

Snapshot reads carry the chunk's binlog position (HIGH) with ``row`` 0 and ``server_id`` 0,
as Debezium's snapshot events carry the snapshot's position.

They are built from one entry per rows event (a *run* of its rows), never per row: a few numpy
repeats and one Arrow take per batch.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pyarrow as pa

FIELDS = pa.struct([("server_id", pa.int64()), ("file", pa.string()), ("pos", pa.int64()),
                    ("row", pa.int32()), ("gtid", pa.string())])


class Run(NamedTuple):
    """``count`` consecutive events of a batch from rows ``row0 ..`` of one rows event."""

    count: int
    file: str
    pos: int
    server_id: int
    gtid: str | None
    row0: int = 0


def from_runs(runs: list[Run]) -> pa.StructArray:
    """The positions of a batch's events from its runs (in event order)."""
    counts = np.fromiter((r.count for r in runs), dtype=np.int64, count=len(runs))
    which = np.repeat(np.arange(len(runs), dtype=np.int64), counts)
    starts = np.zeros(len(runs), dtype=np.int64)
    np.cumsum(counts[:-1], out=starts[1:])
    row0 = np.fromiter((r.row0 for r in runs), dtype=np.int64, count=len(runs))
    rows = np.arange(len(which), dtype=np.int64) - np.repeat(starts - row0, counts)
    pos = np.fromiter((r.pos for r in runs), dtype=np.int64, count=len(runs))
    sid = np.fromiter((r.server_id for r in runs), dtype=np.int64, count=len(runs))
    idx = pa.array(which)
    return pa.StructArray.from_arrays(
        [pa.array(sid[which]), pa.array([r.file for r in runs], pa.string()).take(idx),
         pa.array(pos[which]), pa.array(rows.astype(np.int32)),
         pa.array([r.gtid for r in runs], pa.string()).take(idx)],
        fields=list(FIELDS))


def constant(n: int, file: str, pos: int, gtid: str | None) -> pa.StructArray:
    """``n`` events at one position (a snapshot chunk's)."""
    return pa.StructArray.from_arrays(
        [pa.repeat(pa.scalar(0, pa.int64()), n), pa.repeat(pa.scalar(file, pa.string()), n),
         pa.repeat(pa.scalar(pos, pa.int64()), n), pa.repeat(pa.scalar(0, pa.int32()), n),
         pa.repeat(pa.scalar(gtid or None, pa.string()), n)], fields=list(FIELDS))
