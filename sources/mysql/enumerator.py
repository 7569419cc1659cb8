"""The enumerator: splits tables into chunks lazily, collects what finished chunks reflect, and
creates the one binlog split once every chunk is read *and* checkpointed.

Newly added tables (``snapshot-newly-added-tables``): on a restart, tables that match
``tables`` but are not captured are snapshotted the same way, chunk by chunk, while the binlog
split goes on streaming the others.  The reader that owns the binlog split finds them (it holds
the schema history, so it knows what is captured; a table created while the pipeline was down
counts as new too) and reports them; once their chunks are read and checkpointed, their chunk
info goes to that reader as a *fold* event, and the binlog split takes them in (see
:meth:`MySqlReader._fold`).

The binlog split starts at the lowest of the chunks' HIGH offsets and the offset recorded when
the initial snapshot started, before the tables were listed (``start``): a table that matches
``tables`` and is created while the snapshot runs is then followed from its CREATE in the
binlog, none of its rows lost; the tables the snapshot reads are filtered per chunk HIGH
(:class:`~sources.mysql.split.ChunkFilter`), so nothing is emitted twice.  (With
``snapshot-newly-added-tables`` such a table is snapshotted once the binlog starts instead, like
any table the binlog reader finds that its history does not know.)  A table dropped or renamed
while the snapshot runs: its chunks not read yet are empty and reflect nothing (no HIGH), so the
binlog emits its changes from ``start`` on, up to the DROP/RENAME and its schema change; a table
renamed *into* the pattern counts as created at the RENAME.

Chunk boundaries are found off the control thread (:meth:`EnumeratorContext.call_async`), one
query at a time: a split request with no chunk ready waits for it while checkpoints go on.  A
table's splitter position moves only when the boundary's result is handled, so a checkpoint
taken while a query runs holds the position before it, and a restore from it runs the query
again: a chunk is in the state (pending, or assigned and then in a reader's state) or not
cut yet, never half.

State (:meth:`snapshot_state`, :class:`~sources.mysql.state.MySqlPendingSplitsState`): the
captured tables, the snapshot's ``start`` offset, per table the splitter's next start key,
chunks handed out and finished (with their HIGH offsets) while a snapshot runs; once the binlog
split exists, only the tables and a flag: O(tables).
"""
from __future__ import annotations

import logging
import time
from dataclasses import replace
from collections.abc import Callable
from typing import Any, TypeVar

from runtime.errors import ConfigError
from runtime.source import EnumeratorContext, SplitEnumerator
from sources.mysql.catalog import MySqlTable, TableFilter, describe, list_tables
from sources.mysql.config import MySqlSourceConfig
from sources.mysql.dialect import check_binlog_settings, detect
from sources.mysql.offset import BinlogOffset
from sources.mysql.protocol import connect, translate, translated
from sources.mysql.snapshot import TableGone, even_chunk_start, key_span, next_chunk_start
from sources.mysql.startup import offset_at_timestamp
from sources.mysql.split import (BinlogSplit, ReflectedChunk, SnapshotSplit, canonical_key,
                                 split_from_dict)
from sources.mysql.state import (Fold, MySqlPendingSplitsState, SplitterPosition, fold_to_dict,
                                 state_from_dict, state_to_dict)

log = logging.getLogger("hub.sources.mysql")
_GONE = object()   # a boundary query's result: the table was dropped or renamed


T = TypeVar("T")


def _low(conn: Any, chunks: tuple[ReflectedChunk, ...], start: BinlogOffset | None) -> BinlogOffset:
    """The lowest of ``start`` and the chunks' HIGHs, with its GTID state (the binlog's end
    without either)."""
    dialect = detect(conn)
    highs = [c.high for c in chunks if c.high is not None]
    if start is not None:
        highs.append(start)
    low = min(highs, key=lambda o: o.key) if highs else dialect.binlog_status(conn)
    return BinlogOffset(low.file, low.pos, dialect.gtid_at(conn, low))


def _table_of(split_id: str) -> str:
    return split_id.rpartition("#")[0]


class MySqlEnumerator(SplitEnumerator):
    def __init__(self, context: EnumeratorContext, config: MySqlSourceConfig,
                 state: dict[str, Any] | None):
        self.context, self.config = context, config
        self.conn: Any = None          # the control thread's connection
        self.io_conn: Any = None       # the boundary queries' (call_async's thread) connection
        #: per table, its key span when chunks are cut by arithmetic (snapshot.key_span); only
        #: the I/O thread uses it
        self.spans: dict[str, tuple[int, int] | None] = {}
        self.restored = bool(state)
        st = state_from_dict(state) if state else MySqlPendingSplitsState()
        self.tables: dict[str, MySqlTable] = st.tables
        self.splitting: dict[str, SplitterPosition] = st.splitting
        self.pending: list[SnapshotSplit] = st.pending
        self.assigned: list[str] = st.assigned
        self.finished: dict[str, ReflectedChunk] = st.finished
        self.binlog: BinlogSplit | None = st.binlog        # created, not yet handed out
        self.binlog_assigned: bool = st.binlog_assigned
        self.done: bool = st.done                           # bounded snapshot finished
        # where the initial snapshot started (before listing): the binlog split starts there
        self.start_offset: BinlogOffset | None = st.start
        # newly added tables: table -> description (None: gone), and the fold event once ready
        self.adding: dict[str, MySqlTable | None] = st.adding
        self.fold: Fold | None = st.fold
        self.owner: int | None = None          # the subtask holding the binlog split
        #: the binlog split's version shift (its owner reports it at every start): chunks of
        #: newly added tables get versions consistent with the binlog's
        self.version_shift = 0
        self.waiting: set[int] = set()
        self.gauged_at = 0.0  # when the snapshot's table gauges were last set
        self.ready_at: int | None = None
        #: the table whose next chunk boundary is being queried (call_async), at which position
        self.cutting: tuple[str, SplitterPosition] | None = None
        #: the query of the lowest offset of finished chunks is running (call_async)
        self.lowering = False
        self.accept = TableFilter(config.tables, config.tables_exclude)

    # -- helpers ------------------------------------------------------------------------------
    def _conn(self) -> Any:
        if self.conn is None:
            self.conn = self._connect()
        return self.conn

    def _connect(self) -> Any:
        conn = connect(self.config.connection_settings())
        with conn.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")
        return conn

    @property
    def snapshotting(self) -> bool:
        return self.config.startup_mode in ("initial", "initial-only")

    @property
    def newly_added(self) -> bool:
        """Whether a restored binlog phase waits for the owner's list of newly added tables."""
        return (self.config.snapshot_newly_added_tables and self.config.startup_mode == "initial"
                and self.binlog_assigned)

    @translated
    def start(self) -> None:
        check_binlog_settings(self._conn())
        if self.restored:
            self._restore_tables()
            return
        conn = self._conn()
        if self.snapshotting:
            # before the listing: a table created after it is in the binlog from here on
            self.start_offset = self._position()
        tables: dict[str, MySqlTable] = {}
        for t in list_tables(conn, self.accept):
            described = describe(conn, t, self.config.chunk_key_column)
            if described is not None:
                tables[t] = described
        self.tables = tables
        if self.snapshotting:
            for t in tables:
                self.splitting[t] = SplitterPosition()
            log.info("mysql: snapshot of %d table(s): %s", len(tables), ", ".join(tables) or "none")
        else:
            self.binlog = self._binlog_split(self._start_offset(), ())

    def _restore_tables(self) -> None:
        """A restart may come with other ``tables`` patterns: what no longer matches leaves the
        state; before the binlog split is out, what newly matches joins the snapshot."""
        gone = [t for t in self.tables if not self.accept(t)]
        for t in gone:
            self._forget(t)
        if gone:
            log.info("mysql: no longer captured (they don't match `tables` now): %s", ", ".join(gone))
        if self.binlog is not None:
            self.binlog = replace(
                self.binlog, chunks=tuple(c for c in self.binlog.chunks if self.accept(c.table)),
                tables={t: v for t, v in self.binlog.tables.items() if t not in gone})
        if self.binlog_assigned or self.done or not self.snapshotting:
            return  # the binlog owner reports newly matched tables (MySqlReader._discover)
        conn = self._conn()
        new = [t for t in list_tables(conn, self.accept) if t not in self.tables]
        if not new:
            return
        if self.binlog is not None:
            # the binlog split is made but not out yet: back to the snapshot, its chunks kept
            self.start_offset = self.binlog.offset
            for i, c in enumerate(self.binlog.chunks):
                sid = f"{c.table}#done{i}"
                self.finished[sid] = c
                self.assigned.append(sid)
            self.binlog = None
        for t in new:
            described = describe(conn, t, self.config.chunk_key_column)
            if described is not None:
                self.tables[t] = described
                self.splitting[t] = SplitterPosition()
        log.info("mysql: newly matched table(s) join the snapshot: %s", ", ".join(new))

    def _captured(self, table: str) -> None:
        """A newly added table is in the binlog split now."""
        described = self.adding.pop(table, None)
        if described is not None:
            self.tables[table] = described

    def _forget(self, table: str) -> None:
        self.tables.pop(table, None)
        self.adding.pop(table, None)
        self.splitting.pop(table, None)
        self.pending = [p for p in self.pending if p.table_id != table]
        self.assigned = [a for a in self.assigned if _table_of(a) != table]
        self.finished = {k: v for k, v in self.finished.items() if v.table != table}

    def _start_offset(self) -> BinlogOffset:
        cfg, conn = self.config, self._conn()
        dialect = detect(conn)
        mode = cfg.startup_mode
        if mode == "specific-offset":
            return BinlogOffset(cfg.startup_specific_offset_file, cfg.startup_specific_offset_pos,
                                cfg.startup_specific_offset_gtid_set)
        if mode == "timestamp":
            return offset_at_timestamp(cfg.connection_settings(), dialect, conn,
                                       cfg.startup_timestamp_millis, cfg.server_ids(1)[0])
        if mode == "earliest":
            with conn.cursor() as cur:
                cur.execute("SHOW BINARY LOGS")
                first = cur.fetchone()[0]
            return BinlogOffset(first, 4)
        end = dialect.binlog_status(conn)
        return BinlogOffset(end.file, end.pos, dialect.gtid_at(conn, end))

    def _binlog_split(self, offset: BinlogOffset, chunks: tuple[ReflectedChunk, ...]) -> BinlogSplit:
        return BinlogSplit("binlog", offset, dict(self.tables), chunks)

    def _position(self) -> BinlogOffset:
        """The binlog's end now with its GTID state, fenced: every transaction before it is
        committed, so visible to what is read next (a listing of the tables)."""
        conn = self._conn()
        dialect = detect(conn)
        end = dialect.low_watermark(conn)
        return BinlogOffset(end.file, end.pos, dialect.gtid_at(conn, end))

    def _with_low(self, chunks: tuple[ReflectedChunk, ...], start: BinlogOffset | None,
                  then: Callable[[BinlogOffset], None]) -> None:
        """``then(low)`` in the control thread once the lowest of ``start`` and the chunks'
        HIGHs is known with its GTID state (a query, run off the control thread; one at a
        time: a second call while one runs is dropped, the first one's ``then`` decides)."""
        if self.lowering:
            return
        self.lowering = True

        def done(low: BinlogOffset | None, error: BaseException | None) -> None:
            self.lowering = False
            if error is not None:
                raise translate(error, self.config.connection_settings()) from error
            assert low is not None
            then(low)

        self.context.call_async(lambda: self._io(lambda conn: _low(conn, chunks, start)), done)

    def _io(self, fn: Callable[[Any], T]) -> T:
        """``fn(connection)`` in the enumerator's I/O thread, on a connection of its own
        (dropped when it fails)."""
        try:
            if self.io_conn is None:
                self.io_conn = self._connect()
            return fn(self.io_conn)
        except TableGone:
            raise   # an answer, not a failure: the connection is fine
        except BaseException:
            conn, self.io_conn = self.io_conn, None
            if conn is not None:
                try:
                    conn.close()
                except Exception as exc:  # noqa: BLE001 - the connection failed already
                    log.debug("mysql: closing the enumerator's I/O connection failed (%s)", exc)
            raise

    # -- the protocol -------------------------------------------------------------------------
    @translated
    def handle_split_request(self, subtask: int) -> None:
        if self.pending:
            split = self.pending.pop(0)
            self.assigned.append(split.split_id)
            self.context.assign_splits({subtask: [split]})
            return
        if self.binlog is not None and not self.binlog_assigned and self.ready_at is None \
                and not self._snapshot_open():
            self._assign_binlog(subtask)
            return
        if self.done or (self.binlog_assigned and not self._adding_open()):
            self.context.signal_no_more_splits(subtask)
            return
        self.waiting.add(subtask)
        if self.splitting:
            self._cut_next()
        elif not self._snapshot_open():
            # every chunk read, what comes next not made yet: its query may have been running
            # when the checkpoint this enumerator restored from was taken
            self._snapshot_done()

    def _adding_open(self) -> bool:
        """A newly-added snapshot may still hand out chunks (or the owner has not said yet
        whether there is one)."""
        if not self.newly_added:
            return False
        return self.owner is None or (bool(self.adding) and self.fold is None)

    def _snapshot_open(self) -> bool:
        return bool(self.splitting or self.pending or len(self.finished) < len(self.assigned))

    # -- chunk boundaries, off the control thread ---------------------------------------------
    def _cut_next(self) -> None:
        """Start the query for the next chunk's end (one at a time); its result arrives in
        :meth:`_cut`."""
        if self.cutting is not None or not self.splitting:
            return
        t, pos = next(iter(self.splitting.items()))
        table = self.adding.get(t) or self.tables[t]
        if not table.chunk_key:
            raise ConfigError(f"table {t} has no primary key: give it a chunk key with "
                              f"chunk-key-column = {{ \"{t}\" = \"<indexed column>\" }}",
                              key="source.chunk-key-column")
        self.cutting = (t, pos)
        self.context.call_async(lambda: self._boundary(table, pos.next),
                                lambda result, error: self._cut(t, pos, table, result, error))

    def _boundary(self, table: MySqlTable, start: tuple | None) -> Any:
        """The end of the chunk starting at ``start`` (None: the table's last chunk), or _GONE.
        Runs in the enumerator's I/O thread."""
        size = self.config.chunk_size
        try:
            t = table.table_id
            if t not in self.spans:
                # once per table and run: (min, max) when chunks are cut by arithmetic (no
                # index scan per chunk: the server reads the table once, not twice)
                self.spans[t] = self._io(lambda conn: key_span(conn, table))
            span = self.spans[t]
            if span is not None:
                return even_chunk_start(span, start, size)
            return self._io(lambda conn: next_chunk_start(conn, table, start, size))
        except TableGone:
            return _GONE

    def _cut(self, t: str, pos: SplitterPosition, table: MySqlTable, result: Any,
             error: BaseException | None) -> None:
        """A boundary query's result, in the control thread: the chunk joins ``pending``."""
        self.cutting = None
        if error is not None:
            raise translate(error, self.config.connection_settings()) from error
        if self.splitting.get(t) != pos:
            log.debug("mysql: chunk boundary of %s dropped (the table left the snapshot)", t)
        elif result is _GONE:
            # dropped or renamed since it was listed: the binlog has its changes and the DDL
            log.warning("mysql: %s was dropped or renamed during the snapshot: its remaining "
                        "rows are not read; its changes until then come from the binlog", t)
            del self.splitting[t]
        else:
            result = canonical_key(result)
            self.pending.append(SnapshotSplit(f"{t}#{pos.index}", table, pos.index, pos.next,
                                              result, self.version_shift))
            if result is None:
                del self.splitting[t]
            else:
                self.splitting[t] = SplitterPosition(result, pos.index + 1)
        if self.waiting:
            self._serve_waiting()
        elif not self._snapshot_open():
            self._snapshot_done()   # the last table was gone: nothing more will finish

    @translated
    def handle_reader_event(self, subtask: int, event: dict[str, Any]) -> None:
        if "binlog" in event:
            self.version_shift = event["binlog"].get("version_shift", 0)
            self._owner_report(subtask, event["binlog"]["adding"])
        elif "folded" in event:
            for t in event["folded"]:
                self._captured(t)
            self.fold = None
            log.info("mysql: newly added table(s) now streamed from the binlog: %s",
                     ", ".join(event["folded"]) or "none")
        if "finished" in event:
            self._finished([split_from_dict(d) for d in event["finished"]])  # type: ignore[misc]

    def _finished(self, reports: list[SnapshotSplit]) -> None:
        in_binlog_phase = self.binlog is not None or self.binlog_assigned or self.done
        for split in reports:
            if split.split_id in self.finished:
                continue
            if in_binlog_phase and split.table_id not in self.adding:
                continue  # a report repeated after a restore: that snapshot is complete
            if split.table_id not in self.tables and split.table_id not in self.adding:
                continue  # the table no longer matches
            self.finished[split.split_id] = split.reflected()
            if split.split_id not in self.assigned:
                self.assigned.append(split.split_id)
            if split.next_start is not None:
                # the open-ended last chunk was cut short: the rest is a new chunk
                self.pending.append(SnapshotSplit(
                    f"{split.table_id}#{split.index + 1}", split.table, split.index + 1,
                    split.next_start, None, split.version_shift))
        self.context.set_gauge("snapshot_chunks_done", len(self.finished))
        self.context.set_gauge("snapshot_chunks_started", len(self.assigned))
        self._table_gauges()
        if self._snapshot_open():
            if self.pending and self.waiting:
                self._serve_waiting()     # the rest of a chunk cut short
            return
        self._snapshot_done()

    def _table_gauges(self) -> None:
        """Tables whose snapshot is done and still to do, as gauges: at most once a second
        while chunks finish (it walks every chunk), and always once none is left."""
        now = time.monotonic()
        open_ = self._snapshot_open()
        if open_ and now - self.gauged_at < 1.0:
            return
        self.gauged_at = now
        left = set(self.splitting) | {p.table_id for p in self.pending} | {
            _table_of(a) for a in self.assigned if a not in self.finished}
        total = len(set(self.tables) | set(self.adding)) if open_ or self.finished else 0
        self.context.set_gauge("snapshot_tables_remaining", len(left))
        self.context.set_gauge("snapshot_tables_done", max(0, total - len(left)))

    def _snapshot_done(self) -> None:
        """Every chunk is read: the initial snapshot or the newly added tables' is complete."""
        if self.snapshotting and self.binlog is None and not self.binlog_assigned and not self.done:
            self._snapshot_complete()
        elif self.adding and self.fold is None and self.owner is not None:
            self._adding_complete()

    def _owner_report(self, subtask: int, adding: list[str]) -> None:
        """The binlog owner's list of tables it waits for (sent at every start)."""
        self.owner = subtask
        reported = set(adding)
        if self.fold is not None:
            fold = self.fold
            if any(t not in reported and self.accept(t) for t in (*fold.tables, *fold.gone)):
                self.fold = None        # applied before the restart
            else:                       # tables that no longer match leave it
                self.fold = replace(
                    fold, tables={t: d for t, d in fold.tables.items() if self.accept(t)},
                    gone=tuple(t for t in fold.gone if self.accept(t)),
                    chunks=tuple(c for c in fold.chunks if self.accept(c.table)))
        for t in [t for t in self.adding if t not in reported]:
            if self.accept(t):
                self._captured(t)       # folded in before the restart
            else:
                self._forget(t)
        conn = None
        for t in adding:
            if t in self.adding:
                continue
            conn = conn or self._conn()
            described = describe(conn, t, self.config.chunk_key_column)
            self.adding[t] = described
            if described is not None:
                self.splitting[t] = SplitterPosition()
        if self.adding:
            log.info("mysql: snapshot of newly added table(s): %s", ", ".join(self.adding))
        if self.fold is not None:
            self._send_fold()           # ready before the restart, and checkpointed with it
        elif self.adding and not self._snapshot_open():
            self._adding_complete()
        self._release_waiting()

    def _chunks(self) -> tuple[ReflectedChunk, ...]:
        """The finished chunks that reflect something (a chunk of a table gone before it was
        read has no HIGH)."""
        return tuple(c for c in self.finished.values() if c.high is not None)

    def _adding_complete(self) -> None:
        """Every chunk of the newly added tables is read: the fold event is ready, and goes
        out once a checkpoint holds those chunks (their rows commit before their changes)."""
        chunks = self._chunks()
        self._with_low(chunks, None, lambda low: self._fold_ready(chunks, low))

    def _fold_ready(self, chunks: tuple[ReflectedChunk, ...], low: BinlogOffset) -> None:
        if self.fold is not None or not self.adding or self._snapshot_open():
            return  # the state moved on while the query ran (a repeated completion)
        self.fold = Fold({t: d for t, d in self.adding.items() if d is not None},
                         tuple(t for t, d in self.adding.items() if d is None), chunks, low)
        self.finished, self.assigned = {}, []
        self.ready_at = -1
        log.info("mysql: newly added table(s) snapshotted (%d chunks); folding them into the "
                 "binlog once checkpointed", len(chunks))
        self._release_waiting()

    def _send_fold(self) -> None:
        assert self.fold is not None and self.owner is not None
        self.context.send_event_to_reader(self.owner, {"fold": fold_to_dict(self.fold)})

    def _release_waiting(self) -> None:
        if self.binlog_assigned and not self._adding_open():
            for subtask in sorted(self.waiting):
                self.context.signal_no_more_splits(subtask)
            self.waiting.clear()
        elif self.splitting or self.pending:
            self._serve_waiting()

    def _serve_waiting(self) -> None:
        for subtask in sorted(self.waiting):
            self.waiting.discard(subtask)
            self.handle_split_request(subtask)

    def _snapshot_complete(self) -> None:
        chunks = self._chunks()
        if self.config.startup_mode == "initial-only":
            self.done = True
            log.info("mysql: snapshot finished (%d chunks)", len(chunks))
            self._snapshot_closed()
        else:
            self._with_low(chunks, self.start_offset, lambda low: self._binlog_ready(chunks, low))

    def _binlog_ready(self, chunks: tuple[ReflectedChunk, ...], low: BinlogOffset) -> None:
        if self.binlog is not None or self.binlog_assigned or self._snapshot_open():
            return  # the state moved on while the query ran (a repeated completion)
        self.binlog = self._binlog_split(low, chunks)
        log.info("mysql: snapshot finished (%d chunks); binlog from %s once checkpointed",
                 len(chunks), low)
        self._snapshot_closed()

    def _snapshot_closed(self) -> None:
        self.finished, self.assigned, self.start_offset = {}, [], None
        # The binlog split waits for a checkpoint that holds every chunk: snapshot rows are
        # committed before any change of the same keys from the binlog reaches a sink.
        self.ready_at = -1
        for subtask in sorted(self.waiting):
            if self.done:
                self.context.signal_no_more_splits(subtask)
        if self.done:
            self.waiting.clear()

    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any]:
        if self.ready_at == -1:
            self.ready_at = checkpoint_id
        # plain data built from immutable values: the enumerator goes on changing its own
        # containers while the coordinator keeps this until the checkpoint completes.  A
        # boundary query running now is not in it: its table's position is the one before,
        # so a restore from this checkpoint runs that query again.
        return state_to_dict(MySqlPendingSplitsState(
            self.tables, self.splitting, self.pending, self.assigned, self.finished, self.binlog,
            self.binlog_assigned, self.done, self.start_offset, self.adding, self.fold))

    @translated
    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        if self.ready_at is not None and self.ready_at >= 0 and checkpoint_id >= self.ready_at:
            self.ready_at = None
            if self.binlog is not None and not self.binlog_assigned and self.waiting:
                self._assign_binlog(min(self.waiting))
            elif self.fold is not None and self.owner is not None:
                self._send_fold()

    def _assign_binlog(self, subtask: int) -> None:
        assert self.binlog is not None
        self.context.assign_splits({subtask: [self.binlog]})
        self.binlog, self.binlog_assigned = None, True
        self.owner = subtask
        self.waiting.discard(subtask)
        for other in sorted(self.waiting):
            self.context.signal_no_more_splits(other)
        self.waiting.clear()

    def close(self) -> None:
        for name in ("conn", "io_conn"):
            conn = getattr(self, name)
            setattr(self, name, None)
            if conn is not None:
                try:
                    conn.close()
                except Exception:  # noqa: BLE001 - closing a connection that may be broken
                    log.debug("mysql: enumerator connection close failed (ignored)")
