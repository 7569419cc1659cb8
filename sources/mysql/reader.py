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
from sources.mysql.catalog import TableFilter, list_tables
from sources.mysql.config import MySqlSourceConfig
from sources.mysql.dialect import Dialect, detect
from sources.mysql.offset import BinlogOffset
from sources.mysql import positions
from sources.mysql.protocol import connect, translate, translated
from sources.mysql.snapshot import RawChunk, TableGone, backfill, merge, now_ms, read_chunk
from sources.mysql.chunkfilter import ChunkFilter
from sources.mysql.split import (BinlogSplit, BinlogSplitState, FoldProgress, MySqlSplit,
                                 ReflectedChunk, SnapshotSplit, canonical_key, split_to_dict)
from sources.mysql.state import Fold, fold_from_dict

log = logging.getLogger("hub.sources.mysql")
_DONE = object()
#: chunks a reader keeps assigned ahead of the one it emits: a split request goes through the
#: control thread, the enumerator and its I/O thread and back; with 2, the fetch thread waited
#: for its next chunk after most chunks (a quarter of its time at parallelism 2)
_AHEAD = 4


class _Undecoded:
    """A chunk read by the fetch thread, decoded into its batch by the reader's thread (in
    :meth:`MySqlReader._poll_chunk`) while the fetch thread waits for the next chunk's rows."""

    __slots__ = ("raw", "zero_null", "ts_ms", "versions", "high")

    def __init__(self, raw: RawChunk, zero_null: bool, ts_ms: int, versions: np.ndarray,
                 high: BinlogOffset):
        self.raw, self.zero_null, self.ts_ms, self.versions = raw, zero_null, ts_ms, versions
        self.high = high

    def batch(self) -> ChangeBatch:
        rb = self.raw.to_arrow(self.zero_null)
        n, high = rb.num_rows, self.high
        return ChangeBatch(self.raw.table.schema, "r" * n, arrow=rb, ts_ms=self.ts_ms,
                           versions=self.versions,
                           positions=positions.constant(n, high.file, high.pos, high.gtid))


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
            # a lost connection is transient: the runtime restarts from the checkpoint
            self.out.put(translate(exc, self.config.connection_settings()))

    def _connect(self) -> Any:
        if self.conn is None:
            self.conn = connect(self.config.connection_settings())
            with self.conn.cursor() as cur:
                # TIMESTAMP values come out in UTC, as the binlog has them
                cur.execute("SET time_zone = '+00:00'")
            self.dialect = detect(self.conn)
        return self.conn

    def _read(self, split: SnapshotSplit) -> tuple[SnapshotSplit, ChangeBatch | _Undecoded | None]:
        try:
            return self._read_chunk(split)
        except TableGone as exc:
            # finished without a HIGH: it reflects nothing, the binlog split emits every change
            # of its range from the snapshot's start on (up to the DROP or RENAME)
            log.warning("mysql: %s: chunk %s not read", exc, split.split_id)
            return split.read(None, 0), None

    def _read_chunk(self, split: SnapshotSplit) -> tuple[SnapshotSplit, ChangeBatch | _Undecoded]:
        conn = self._connect()
        assert self.dialect is not None
        table = split.table
        start, end = split.start, split.end
        zero_null = self.config.zero_date == "null"
        limit = self.config.chunk_size + 1 if end is None else None
        exact = self.dialect.consistent_read(conn)
        if exact is not None:
            try:
                raw = read_chunk(conn, table, start, end, limit)
            finally:
                conn.commit()
            low = high = exact
        else:
            low = self.dialect.low_watermark(conn)
            raw = read_chunk(conn, table, start, end, limit)
            high = self.dialect.binlog_status(conn)
        rb = None
        effective_end, cut_at = end, None
        n = len(raw)
        if limit is not None and n == limit:
            # the open-ended last chunk grew while we read: keep chunk-size rows, the rest
            # becomes a new chunk starting at the first row left out
            rb = raw.to_arrow(zero_null)
            key_idx = [table.schema.index(k) for k in table.chunk_key]
            last = canonical_key(tuple(rb.column(i)[limit - 1].as_py() for i in key_idx))
            rb = rb.slice(0, limit - 1)
            n = limit - 1
            effective_end = cut_at = last
        rows = None
        if low.key != high.key:
            changes = backfill(self.config.connection_settings(), self.dialect, self.server_id,
                               table, low, high, start, effective_end, zero_null)
            if changes:
                rows = merge(raw.to_arrow(zero_null) if rb is None else rb, table, changes)
                n = len(rows)
        if exact is None:
            high = BinlogOffset(high.file, high.pos, high.gtid)
        split = split.read(high, n, cut_at)
        # versions: below any later binlog change of these keys (those are at >= HIGH, with
        # the binlog's version shift when the chunk was made, or a larger one)
        versions = np.full(n, high.version - 1 + split.version_shift, dtype=np.int64)
        ts_ms = now_ms()
        if rows is None and rb is None:
            return split, _Undecoded(raw, zero_null, ts_ms, versions, high)
        where = positions.constant(n, high.file, high.pos, high.gtid)
        if rows is not None:
            return split, ChangeBatch(table.schema, "r" * n, rows=rows, ts_ms=ts_ms,
                                      versions=versions, positions=where)
        return split, ChangeBatch(table.schema, "r" * n, arrow=rb, ts_ms=ts_ms, versions=versions,
                                  positions=where)

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
        self.accept = TableFilter(config.tables, config.tables_exclude)
        self.chunks: list[SnapshotSplit] = []               # assigned, not yet emitted
        self.finished: dict[str, tuple[SnapshotSplit, int | None]] = {}  # -> first checkpoint
        self.binlog: BinlogSplitState | None = None
        self.chunk_fetcher: _ChunkFetcher | None = None
        self.binlog_fetcher: BinlogFetcher | None = None
        self.units: queue.Queue = queue.Queue(maxsize=4)
        self.no_more = False
        self.requested = False
        self.restored_reports: list[dict] = []
        self.discovered = False
        #: the binlog thread's caught_up_at last reported to the output
        self.caught_up_at = 0.0
        self.folds: list[Fold] = []                         # from the enumerator, to apply
        #: (the binlog split's ``chunks``, their filter): built once per tuple, not per unit
        self.chunk_filter: tuple[tuple[ReflectedChunk, ...], ChunkFilter] | None = None

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
                if not self.accept(s.table_id):
                    log.info("mysql: %s no longer matches `tables`: chunk %s dropped",
                             s.table_id, s.split_id)
                elif s.finished:
                    self.finished[s.split_id] = (s, None)
                    self.restored_reports.append(split_to_dict(s))
                else:
                    # an immutable value: the fetcher's result is a new one (SnapshotSplit.read)
                    self._chunk_fetcher().todo.put(s)
                    self.chunks.append(s)
            else:
                assert isinstance(s, BinlogSplit)
                self.binlog = BinlogSplitState(s)

    def _chunk_fetcher(self) -> _ChunkFetcher:
        if self.chunk_fetcher is None:
            self.chunk_fetcher = _ChunkFetcher(self.config, self.server_id)
            self.chunk_fetcher.start()
        return self.chunk_fetcher

    def notify_no_more_splits(self) -> None:
        self.no_more = True

    def handle_source_event(self, event: dict[str, Any]) -> None:
        if "fold" in event:
            self.folds.append(fold_from_dict(event["fold"]))

    # -- reading ------------------------------------------------------------------------------
    def poll_next(self, output: ReaderOutput) -> InputStatus:
        if self.restored_reports:
            self.context.send_event_to_enumerator({"finished": self.restored_reports})
            self.restored_reports = []
        if self.chunks:
            if len(self.chunks) < _AHEAD and (self.binlog is None or self.binlog.adding):
                self._request()
            # while the binlog streams too (newly added tables), don't wait on chunks
            status = self._poll_chunk(output, 0.0 if self.binlog is not None else 0.05)
            if status is InputStatus.MORE_AVAILABLE or self.binlog is None:
                return status
        if self.binlog is not None:
            if self.binlog.adding and not self.chunks:
                self._request()  # help snapshotting the newly added tables
            return self._poll_binlog(output)
        if self.no_more:
            return InputStatus.END_OF_INPUT
        self._request()
        return InputStatus.NOTHING_AVAILABLE

    def _poll_chunk(self, output: ReaderOutput, wait_s: float) -> InputStatus:
        assert self.chunk_fetcher is not None
        try:
            got = self.chunk_fetcher.out.get(timeout=wait_s) if wait_s else self.chunk_fetcher.out.get_nowait()
        except queue.Empty:
            return InputStatus.NOTHING_AVAILABLE
        if isinstance(got, BaseException):
            raise got if isinstance(got, HubError) else TerminalError(f"snapshot failed: {got!r}") from got
        split, batch = got
        if isinstance(batch, _Undecoded):
            batch = batch.batch()
        if batch is not None:
            if split.index == 0 and self.config.include_schema_changes:
                table = split.table
                output.collect_schema_change(SchemaChange("create_table", table.table_id, table.schema),
                                             split.split_id)
            output.collect(batch, split.split_id)
        output.split_finished(split.split_id)
        self.chunks = [c for c in self.chunks if c.split_id != split.split_id]
        self.finished[split.split_id] = (split, None)
        self.context.send_event_to_enumerator({"finished": [split_to_dict(split)]})
        if len(self.chunks) < _AHEAD and (self.binlog is None or self.binlog.adding):
            self._request()  # keep the next chunk in flight while this one goes downstream
        return InputStatus.MORE_AVAILABLE

    @translated
    def _poll_binlog(self, output: ReaderOutput) -> InputStatus:
        split = self.binlog
        assert split is not None
        if not self.discovered:
            self._discover(split)
        if self.folds and split.fold is None and split.offset.skip_rows == 0:
            self._fold(split, self.folds.pop(0))
        if self.binlog_fetcher is None:
            settings = self.config.connection_settings()
            probe = connect(settings)
            try:
                dialect = detect(probe)
            finally:
                probe.close()
            self.binlog_fetcher = BinlogFetcher(self.config, settings, dialect, self.server_id,
                                                split.to_split(), self.units)
            self.binlog_fetcher.start()
        try:
            unit = self.units.get(timeout=0.05)
        except queue.Empty:
            if not self.binlog_fetcher.is_alive() and self.units.empty():
                # it always hands over an error before it ends: this is a bug, never a
                # reason to go on with a frozen offset
                raise TerminalError(f"the binlog thread ended without an error at "
                                    f"{split.offset}: no change would be read any more") from None
            up = self.binlog_fetcher.caught_up_at
            if up > self.caught_up_at:  # everything handed over is emitted
                self.caught_up_at = up
                output.caught_up(up)
            return InputStatus.NOTHING_AVAILABLE
        if isinstance(unit, BaseException):
            raise unit if isinstance(unit, HubError) else TerminalError(f"binlog failed: {unit!r}") from unit
        self._emit(unit, output)
        return InputStatus.MORE_AVAILABLE

    def _discover(self, split: BinlogSplitState) -> None:
        """Once per start: drop what no longer matches ``tables``; find tables that match now
        but were not captured (a changed pattern, or created while the pipeline was down)."""
        self.discovered = True
        gone = [t for t in split.tables if not self.accept(t)]
        split.update_tables(dict.fromkeys(gone))
        split.chunks = tuple(c for c in split.chunks if self.accept(c.table))
        split.ddl = {t: v for t, v in split.ddl.items() if self.accept(t)}
        split.adding = tuple(t for t in split.adding if self.accept(t))
        if gone:
            log.info("mysql: no longer captured (they don't match `tables` now): %s", ", ".join(gone))
        newly = self.config.snapshot_newly_added_tables and self.config.startup_mode == "initial"
        conn = connect(self.config.connection_settings())
        try:
            matching = list_tables(conn, self.accept)
        finally:
            conn.close()
        known = set(split.tables) | set(split.ddl) | set(split.adding)
        new = [t for t in matching if t not in known]
        if new and newly:
            split.adding = (*split.adding, *new)
            log.info("mysql: newly matched table(s) %s: snapshotting their rows while the "
                     "binlog goes on", ", ".join(new))
        elif new:
            log.warning("mysql: table(s) %s match `tables` but are not in the schema history "
                        "at the binlog split's position: they are captured from there on (from "
                        "their CREATE if they were created after it, e.g. during the initial "
                        "snapshot); rows they had before it are not read "
                        "(snapshot-newly-added-tables = true would snapshot them)", ", ".join(new))
        if newly:
            self.context.send_event_to_enumerator({"binlog": {
                "adding": list(split.adding), "version_shift": split.version_shift}})

    def _fold(self, split: BinlogSplitState, fold: Fold) -> None:
        """Fold newly snapshotted tables into the binlog split.  Their changes from their
        chunks' lowest HIGH on are needed; if the stream is already past that point, it goes
        back there and re-reads up to where it was for those tables only."""
        if self.binlog_fetcher is not None:
            self.binlog_fetcher.stop()
            self.binlog_fetcher.join(30)
            self.binlog_fetcher = None
        self.units = queue.Queue(maxsize=4)     # units past split.offset: read again
        here = split.offset
        low = fold.low
        tables = fold.tables
        split.update_tables(tables)
        split.chunks = split.chunks + fold.chunks
        split.adding = tuple(t for t in split.adding if t not in tables and t not in fold.gone)
        if tables and low.is_before(here):
            split.offset = low
            split.fold = FoldProgress(here, tuple(sorted(tables)))
        log.info("mysql: table(s) %s folded into the binlog%s", ", ".join(sorted(tables)) or "-",
                 f" (re-reading from {low} to {here} for them)" if split.fold else "")
        self.context.send_event_to_enumerator({"folded": sorted(tables) + list(fold.gone)})

    def _emit(self, unit: Unit, output: ReaderOutput) -> None:
        split = self.binlog
        assert split is not None
        for item in unit.items:
            if isinstance(item, ChangeBatch):
                output.collect(item, split.split_id)
            else:
                output.collect_schema_change(item, split.split_id)
        split.update_tables(unit.tables)
        split.offset = unit.offset
        split.version_shift = unit.version_shift
        split.ddl = unit.ddl
        if unit.fold_done:
            split.fold = None
        self.context.set_gauge("binlog_lag_s", unit.lag_s, "max")
        if split.chunks and self._chunks_filter(split).passed(unit.offset):
            split.chunks = ()   # past every chunk's HIGH: state back to O(tables)

    def _chunks_filter(self, split: BinlogSplitState) -> ChunkFilter:
        """The filter of ``split.chunks`` (a new tuple whenever chunks change): building it is
        O(chunks), too much for every transaction while the binlog catches up."""
        if self.chunk_filter is None or self.chunk_filter[0] is not split.chunks:
            self.chunk_filter = (split.chunks, ChunkFilter(split.chunks))
        return self.chunk_filter[1]

    def wait_available(self, timeout_s: float) -> None:
        if not self.chunks and self.binlog is None:
            # a split request is usually answered within milliseconds
            time.sleep(min(timeout_s, 0.002 if self.requested else 0.05))
        # otherwise poll_next already waited on its queue

    # -- checkpoints --------------------------------------------------------------------------
    def snapshot_state(self, checkpoint_id: int) -> list[MySqlSplit]:
        """Immutable split values: the chunks as assigned (a chunk being read is read again
        after a restore), the finished ones with what they reflect, the binlog split's
        progress (:meth:`BinlogSplitState.to_split`)."""
        out: list[MySqlSplit] = list(self.chunks)
        for sid, (split, first) in list(self.finished.items()):
            if first is None:
                self.finished[sid] = (split, checkpoint_id)
            out.append(split)
        if self.binlog is not None:
            out.append(self.binlog.to_split())
        return out

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        for sid, (_, first) in list(self.finished.items()):
            if first is not None and first <= checkpoint_id:
                del self.finished[sid]

    def close(self) -> None:
        for f in (self.chunk_fetcher, self.binlog_fetcher):
            if f is not None:
                f.stop()
