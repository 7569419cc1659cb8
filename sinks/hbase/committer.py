"""Applying change batches to HBase at a timestamp, and the committer that applies
write-ahead-log segments once their checkpoint is durable."""
from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Iterable

import numpy as np
import pyarrow as pa

from runtime.batch import DELETE, ChangeBatch
from runtime.errors import BadRecordError
from runtime.sink import CommitContext, Committable, Committer
from runtime.wal import WriteAheadLog
from sinks.hbase.client import BatchMutation, HBaseClient, Mutation
from sinks.hbase.config import HBaseSinkConfig
from sinks.hbase.types import cell_values, rowkeys

log = logging.getLogger(__name__)


def last_per_key(keys: list[bytes]) -> np.ndarray | None:
    """Positions of the last change of each rowkey, in order; None when all are unique."""
    n = len(keys)
    table = pa.table({"k": pa.array(keys, pa.binary()),
                      "i": pa.array(np.arange(n, dtype=np.int64))})
    last = table.group_by("k", use_threads=False).aggregate([("i", "max")])
    if last.num_rows == n:
        return None
    return np.sort(last.column("i_max").to_numpy())


class _Sender:
    """Runs the Thrift calls of an :class:`Applier` in order on a thread of their own, so the
    next mutations are built while the server works on the previous ones (a Thrift call is a
    synchronous round trip).  The first error stops it and is raised by ``submit``/``drain``."""

    def __init__(self) -> None:
        self._tasks: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._idle = threading.Condition()
        self._pending = 0
        self._thread = threading.Thread(target=self._run, name="hbase-sender", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            try:
                if self._error is None:
                    task()
            except BaseException as exc:  # noqa: BLE001 - handed to the applier's thread
                self._error = exc
            with self._idle:
                self._pending -= 1
                self._idle.notify_all()

    def submit(self, task: Callable[[], None]) -> None:
        self._raise()
        with self._idle:
            self._pending += 1
        self._tasks.put(task)

    def drain(self) -> None:
        with self._idle:
            self._idle.wait_for(lambda: self._pending == 0)
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def close(self) -> None:
        self._tasks.put(None)
        self._thread.join(timeout=30)


class Applier:
    """Writes batches to their HBase tables.  Used from one thread at a time."""

    def __init__(self, config: HBaseSinkConfig):
        self.config = config
        self.client = HBaseClient(config)
        self._sender: _Sender | None = None

    def apply(self, batches: Iterable[ChangeBatch], timestamp: int) -> int:
        """Apply each batch (a run of one table) in order, the i-th at ``timestamp + i``, so a
        later change of a key always has the higher timestamp.  Returns (once everything is
        written) the next free timestamp."""
        if self._sender is None:
            self._sender = _Sender()
        try:
            for batch in batches:
                if len(batch):
                    self._apply_batch(batch, timestamp)
                    timestamp += 1
        finally:
            self._sender.drain()
        return timestamp

    def _apply_batch(self, batch: ChangeBatch, timestamp: int) -> None:
        cfg, schema = self.config, batch.schema
        if not schema.primary_key:
            raise BadRecordError(f"hbase: table {schema.table} has no primary key: rowkeys "
                                 "need one")
        table = cfg.table_for(schema.table)
        key_cols = set(schema.primary_key)
        value_cols = [c for c in schema.columns if c.name not in key_cols]
        families = sorted({cfg.column_family} | {cfg.family_of(c.name) for c in value_cols})
        sender = self._sender
        assert sender is not None
        # every call goes through the sender: one connection, used by one thread, in order
        sender.submit(lambda: self.client.ensure_table(table, families))
        rows = pa.Table.from_batches([batch.arrow()])
        keys = rowkeys(rows, schema)
        deletes = np.frombuffer(batch.ops.encode("ascii"), dtype=np.uint8) == ord(DELETE)
        keep = last_per_key(keys)
        if keep is not None:  # only the last change of a row matters
            rows = rows.take(pa.array(keep))
            keys = [keys[i] for i in keep]
            deletes = deletes[keep]
        qualifiers = [f"{cfg.family_of(c.name)}:{c.name}".encode() for c in value_cols]
        values = [cell_values(rows.column(c.name).combine_chunks(), c.type, cfg.value_encoding)
                  for c in value_cols]
        delete_row = [Mutation(isDelete=True, column=f.encode()) for f in families]
        # a table of key columns only: one empty cell makes the row exist
        marker = [Mutation(column=f"{cfg.column_family}:".encode(), value=b"")]
        out: list = []
        for i, (key, cells) in enumerate(zip(keys, zip(*values) if values else [()] * len(keys))):
            if deletes[i]:
                out.append(BatchMutation(key, delete_row))
            elif not qualifiers:
                out.append(BatchMutation(key, marker))
            else:
                # a NULL deletes the column, so no older value of it stays visible
                out.append(BatchMutation(key, [
                    Mutation(column=q, value=v) if v is not None
                    else Mutation(isDelete=True, column=q)
                    for q, v in zip(qualifiers, cells)]))
            if len(out) >= cfg.batch_size:
                sender.submit(lambda out=out: self.client.mutate(table, out, timestamp))
                out = []
        if out:
            sender.submit(lambda: self.client.mutate(table, out, timestamp))

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close()
        self.client.close()


class HBaseCommitter(Committer):
    """Applies the WAL segments named by committables ``{"segment", "rows", "timestamp"}``.

    Idempotent: a segment is deleted only after it was applied completely, so a missing
    segment was applied before; re-applying an existing one writes the same cells at the same
    timestamps, which changes nothing.  Never returns "not yet".
    """

    def __init__(self, config: HBaseSinkConfig):
        self.config = config
        self._applier: Applier | None = None

    def commit(self, committables: list[Committable], context: CommitContext) -> list[Committable]:
        for c in committables:
            path = c.get("segment")
            if not path:
                continue
            if not os.path.isdir(path):
                log.debug("hbase: segment %s was applied before", path)
                continue
            if self._applier is None:
                self._applier = Applier(self.config)
            self._applier.apply(WriteAheadLog.read_segment(path), int(c["timestamp"]))
            WriteAheadLog.delete_segment(path)
        return []

    def close(self) -> None:
        if self._applier is not None:
            self._applier.close()
