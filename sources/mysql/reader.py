"""The reader: snapshot chunks (read by a fetch thread, one chunk at a time) and the binlog
split (streamed by :class:`~sources.mysql.binlog.BinlogFetcher`).

A finished chunk stays in this reader's state, marked finished with its HIGH offset, until a
checkpoint that holds it completes: by then its report reached the enumerator before that
checkpoint's successor was triggered, so the enumerator's state carries it from then on.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

import numpy as np

from runtime.batch import ChangeBatch
from runtime.errors import HubError, TerminalError
from runtime.schema import SchemaChange
from runtime.source import InputStatus, ReaderContext, ReaderOutput, SourceReader
from sources.mysql.binlog import BinlogFetcher, Unit
from sources.mysql.catalog import MySqlTable
from sources.mysql.config import MySqlSourceConfig
from sources.mysql.dialect import Dialect, detect
from sources.mysql.offset import BinlogOffset
from sources.mysql.protocol import connect
from sources.mysql.snapshot import backfill, merge, now_ms, select_chunk
from sources.mysql.split import BinlogSplit, ChunkFilter, MySqlSplit, SnapshotSplit, decode_key, encode_key

log = logging.getLogger("hub.sources.mysql")
_DONE = object()


class _ChunkFetcher(threading.Thread):
    """Reads the chunks put into ``todo``; results go to ``out`` as (split, batch)."""

    def __init__(self, config: MySqlSourceConfig, server_id: int):
        super().__init__(name="mysql-snapshot", daemon=True)
        self.config, self.server_id = config, server_id
        self.todo: queue.Queue = queue.Queue()
        self.out: queue.Queue = queue.Queue(maxsize=2)
        self.stopped = threading.Event()
        self.conn: Any = None
        self.dialect: Dialect | None = None

    def run(self) -> None:
        try:
            while not self.stopped.is_set():
                try:
                    split = self.todo.get(timeout=0.2)
                except queue.Empty:
                    continue
                result = self._read(split)
                while not self.stopped.is_set():
                    try:
                        self.out.put(result, timeout=0.2)
                        break
                    except queue.Full:
                        continue
        except BaseException as exc:  # noqa: BLE001 - handed to the reader, which raises it
            self.out.put(exc)

    def _connect(self) -> Any:
        if self.conn is None:
            self.conn = connect(self.config.connection_settings())
            with self.conn.cursor() as cur:
                # TIMESTAMP values come out in UTC, as the binlog has them
                cur.execute("SET time_zone = '+00:00'")
            self.dialect = detect(self.conn)
        return self.conn

    def _read(self, split: SnapshotSplit) -> tuple[SnapshotSplit, ChangeBatch]:
        conn = self._connect()
        assert self.dialect is not None
        table = split.mysql_table
        start, end = decode_key(split.start), decode_key(split.end)
        zero_null = self.config.zero_date == "null"
        limit = self.config.chunk_size + 1 if end is None else None
        exact = self.dialect.consistent_read(conn)
        if exact is not None:
            try:
                rb = select_chunk(conn, table, start, end, limit, zero_null)
            finally:
                conn.commit()
            low = high = exact
        else:
            low = self.dialect.binlog_status(conn)
            rb = select_chunk(conn, table, start, end, limit, zero_null)
            high = self.dialect.binlog_status(conn)
        effective_end = end
        if limit is not None and rb.num_rows == limit:
            # the open-ended last chunk grew while we read: keep chunk-size rows, the rest
            # becomes a new chunk starting at the first row left out
            key_idx = [table.schema.index(k) for k in table.chunk_key]
            last = tuple(rb.column(i)[limit - 1].as_py() for i in key_idx)
            rb = rb.slice(0, limit - 1)
            split.next_start = encode_key(last)
            split.end = encode_key(last)
            effective_end = last
        rows = None
        if low.key != high.key:
            changes = backfill(self.config.connection_settings(), self.dialect, self.server_id,
                               table, low, high, start, effective_end, zero_null)
            if changes:
                rows = merge(rb, table, changes)
        if exact is None:
            high = BinlogOffset(high.file, high.pos, high.gtid)
        split.finished, split.high = True, high.to_dict()
        n = rb.num_rows if rows is None else len(rows)
        split.rows = n
        # versions: below any later binlog change of these keys (those are at >= HIGH)
        versions = np.full(n, high.version - 1, dtype=np.int64)
        if rows is None:
            batch = ChangeBatch(table.schema, "r" * n, arrow=rb, ts_ms=now_ms(), versions=versions)
        else:
            batch = ChangeBatch(table.schema, "r" * n, rows=rows, ts_ms=now_ms(), versions=versions)
        return split, batch

    def stop(self) -> None:
        self.stopped.set()
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001 - the connection may be broken already
                log.debug("mysql: snapshot connection close failed (ignored)")


class MySqlReader(SourceReader):
    def __init__(self, context: ReaderContext, config: MySqlSourceConfig, server_id: int):
        self.context, self.config, self.server_id = context, config, server_id
        self.chunks: list[SnapshotSplit] = []               # assigned, not yet emitted
        self.finished: dict[str, tuple[SnapshotSplit, int | None]] = {}  # -> first checkpoint
        self.binlog: BinlogSplit | None = None
        self.chunk_fetcher: _ChunkFetcher | None = None
        self.binlog_fetcher: BinlogFetcher | None = None
        self.units: queue.Queue = queue.Queue(maxsize=4)
        self.no_more = False
        self.requested = False
        self.restored_reports: list[dict] = []
        self.filter_chunks: ChunkFilter | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        if self.restored_reports:
            self.context.send_event_to_enumerator({"finished": self.restored_reports})
            self.restored_reports = []
        self._request()

    def _request(self) -> None:
        if not self.requested and not self.no_more:
            self.requested = True
            self.context.send_split_request()

    def add_splits(self, splits: list) -> None:
        self.requested = False
        for s in splits:
            assert isinstance(s, MySqlSplit)
            if isinstance(s, SnapshotSplit):
                if s.finished:
                    self.finished[s.split_id] = (s, None)
                    self.restored_reports.append(s.to_dict())
                else:
                    # the fetcher works on a copy: this one stays as the checkpoint must see it
                    self._chunk_fetcher().todo.put(SnapshotSplit.from_dict(s.to_dict()))
                    self.chunks.append(s)
            else:
                self.binlog = s

    def _chunk_fetcher(self) -> _ChunkFetcher:
        if self.chunk_fetcher is None:
            self.chunk_fetcher = _ChunkFetcher(self.config, self.server_id)
            self.chunk_fetcher.start()
        return self.chunk_fetcher

    def notify_no_more_splits(self) -> None:
        self.no_more = True

    # -- reading ------------------------------------------------------------------------------
    def poll_next(self, output: ReaderOutput) -> InputStatus:
        if self.restored_reports:
            self.context.send_event_to_enumerator({"finished": self.restored_reports})
            self.restored_reports = []
        if self.chunks:
            if len(self.chunks) < 2 and self.binlog is None:
                self._request()
            return self._poll_chunk(output)
        if self.binlog is not None:
            return self._poll_binlog(output)
        if self.no_more:
            return InputStatus.END_OF_INPUT
        self._request()
        return InputStatus.NOTHING_AVAILABLE

    def _poll_chunk(self, output: ReaderOutput) -> InputStatus:
        assert self.chunk_fetcher is not None
        try:
            got = self.chunk_fetcher.out.get(timeout=0.05)
        except queue.Empty:
            return InputStatus.NOTHING_AVAILABLE
        if isinstance(got, BaseException):
            raise got if isinstance(got, HubError) else TerminalError(f"snapshot failed: {got!r}") from got
        split, batch = got
        if split.index == 0 and self.config.include_schema_changes:
            table = split.mysql_table
            output.collect_schema_change(SchemaChange("create_table", table.table_id, table.schema),
                                         split.split_id)
        output.collect(batch, split.split_id)
        output.split_finished(split.split_id)
        self.chunks = [c for c in self.chunks if c.split_id != split.split_id]
        self.finished[split.split_id] = (split, None)
        self.context.send_event_to_enumerator({"finished": [split.to_dict()]})
        if len(self.chunks) < 2:
            self._request()  # keep the next chunk in flight while this one goes downstream
        return InputStatus.MORE_AVAILABLE

    def _poll_binlog(self, output: ReaderOutput) -> InputStatus:
        split = self.binlog
        assert split is not None
        if self.binlog_fetcher is None:
            tables = {t: MySqlTable.from_dict(d) for t, d in split.tables.items()}
            settings = self.config.connection_settings()
            probe = connect(settings)
            try:
                dialect = detect(probe)
            finally:
                probe.close()
            self.binlog_fetcher = BinlogFetcher(self.config, settings, dialect, self.server_id,
                                                split.binlog_offset, tables, split.chunks, self.units)
            self.binlog_fetcher.start()
        try:
            unit = self.units.get(timeout=0.05)
        except queue.Empty:
            return InputStatus.NOTHING_AVAILABLE
        if isinstance(unit, BaseException):
            raise unit if isinstance(unit, HubError) else TerminalError(f"binlog failed: {unit!r}") from unit
        self._emit(unit, output)
        return InputStatus.MORE_AVAILABLE

    def _emit(self, unit: Unit, output: ReaderOutput) -> None:
        split = self.binlog
        assert split is not None
        for item in unit.items:
            if isinstance(item, ChangeBatch):
                output.collect(item, split.split_id)
            else:
                output.collect_schema_change(item, split.split_id)
        for t, d in unit.tables.items():
            if d is None:
                split.tables.pop(t, None)
            else:
                split.tables[t] = d
        split.offset = unit.offset.to_dict()
        self.context.set_gauge("binlog_lag_s", unit.lag_s, "max")
        if split.chunks and ChunkFilter(split.chunks).passed(unit.offset):
            split.chunks = []   # past every chunk's HIGH: state back to O(tables)

    def wait_available(self, timeout_s: float) -> None:
        if not self.chunks and self.binlog is None:
            # a split request is usually answered within milliseconds
            time.sleep(min(timeout_s, 0.002 if self.requested else 0.05))
        # otherwise poll_next already waited on its queue

    # -- checkpoints --------------------------------------------------------------------------
    def snapshot_state(self, checkpoint_id: int) -> list[MySqlSplit]:
        out: list[MySqlSplit] = [SnapshotSplit.from_dict(c.to_dict()) for c in self.chunks]
        for sid, (split, first) in list(self.finished.items()):
            if first is None:
                self.finished[sid] = (split, checkpoint_id)
            out.append(SnapshotSplit.from_dict(split.to_dict()))
        if self.binlog is not None:
            out.append(BinlogSplit.from_dict(self.binlog.to_dict()))
        for s in out:
            if isinstance(s, SnapshotSplit) and not s.finished:
                s.next_start, s.high, s.rows = None, None, 0
        return out

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        for sid, (_, first) in list(self.finished.items()):
            if first is not None and first <= checkpoint_id:
                del self.finished[sid]

    def close(self) -> None:
        for f in (self.chunk_fetcher, self.binlog_fetcher):
            if f is not None:
                f.stop()
