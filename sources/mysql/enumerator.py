"""The enumerator: splits tables into chunks lazily, collects what finished chunks reflect, and
creates the one binlog split once every chunk is read *and* checkpointed.

State (:meth:`snapshot_state`): the captured tables, per table the splitter's next start key,
chunks handed out and finished (with their HIGH offsets) while the snapshot runs; once the
binlog split exists, only the tables and a flag: O(tables).
"""
from __future__ import annotations

import copy
import logging
from typing import Any

from runtime.errors import ConfigError
from runtime.source import EnumeratorContext, SplitEnumerator
from sources.mysql.catalog import MySqlTable, TableFilter, describe, list_tables
from sources.mysql.config import MySqlSourceConfig
from sources.mysql.dialect import detect
from sources.mysql.offset import BinlogOffset
from sources.mysql.protocol import connect
from sources.mysql.snapshot import next_chunk_start
from sources.mysql.split import BinlogSplit, SnapshotSplit, decode_key, encode_key

log = logging.getLogger("hub.sources.mysql")


class MySqlEnumerator(SplitEnumerator):
    def __init__(self, context: EnumeratorContext, config: MySqlSourceConfig,
                 state: dict[str, Any] | None):
        self.context, self.config = context, config
        self.conn: Any = None
        state = state or {}
        self.started = bool(state)
        self.tables: dict[str, dict] = state.get("tables", {})
        self.splitting: dict[str, dict] = state.get("splitting", {})
        self.pending: list[dict] = state.get("pending", [])
        self.assigned: list[str] = state.get("assigned", [])
        self.finished: dict[str, list] = state.get("finished", {})
        self.binlog: dict | None = state.get("binlog")          # created, not yet handed out
        self.binlog_assigned: bool = state.get("binlog_assigned", False)
        self.done: bool = state.get("done", False)              # bounded snapshot finished
        self.waiting: set[int] = set()
        self.ready_at: int | None = None

    # -- helpers ------------------------------------------------------------------------------
    def _conn(self) -> Any:
        if self.conn is None:
            self.conn = connect(self.config.connection_settings())
            with self.conn.cursor() as cur:
                cur.execute("SET time_zone = '+00:00'")
        return self.conn

    @property
    def snapshotting(self) -> bool:
        return self.config.startup_mode in ("initial", "initial-only")

    def start(self) -> None:
        if self.started:
            return
        self.started = True
        conn = self._conn()
        accept = TableFilter(self.config.tables, self.config.tables_exclude)
        tables: dict[str, MySqlTable] = {}
        for t in list_tables(conn, accept):
            described = describe(conn, t, self.config.chunk_key_column)
            if described is not None:
                tables[t] = described
        self.tables = {t: v.to_dict() for t, v in tables.items()}
        if self.snapshotting:
            for t, v in tables.items():
                self.splitting[t] = {"next": None, "index": 0}
            log.info("mysql: snapshot of %d table(s): %s", len(tables), ", ".join(tables) or "none")
        else:
            self.binlog = self._binlog_split(self._start_offset(), []).to_dict()

    def _start_offset(self) -> BinlogOffset:
        cfg, conn = self.config, self._conn()
        dialect = detect(conn)
        mode = cfg.startup_mode
        if mode == "specific-offset":
            return BinlogOffset(cfg.startup_specific_offset_file, cfg.startup_specific_offset_pos,
                                cfg.startup_specific_offset_gtid_set)
        if mode in ("earliest", "timestamp"):
            with conn.cursor() as cur:
                cur.execute("SHOW BINARY LOGS")
                first = cur.fetchone()[0]
            return BinlogOffset(first, 4)
        end = dialect.binlog_status(conn)
        return BinlogOffset(end.file, end.pos, dialect.gtid_at(conn, end))

    def _binlog_split(self, offset: BinlogOffset, chunks: list) -> BinlogSplit:
        return BinlogSplit("binlog", offset=offset.to_dict(), tables=dict(self.tables), chunks=chunks)

    # -- the protocol -------------------------------------------------------------------------
    def handle_split_request(self, subtask: int) -> None:
        split = self._next_chunk()
        if split is not None:
            self.assigned.append(split["split_id"])
            self.context.assign_splits({subtask: [SnapshotSplit.from_dict(split)]})
            return
        if self.binlog is not None and not self.binlog_assigned and self.ready_at is None \
                and not self._snapshot_open():
            self._assign_binlog(subtask)
            return
        if self.done or self.binlog_assigned:
            self.context.signal_no_more_splits(subtask)
            return
        self.waiting.add(subtask)

    def _snapshot_open(self) -> bool:
        return bool(self.splitting or self.pending or len(self.finished) < len(self.assigned))

    def _next_chunk(self) -> dict | None:
        if self.pending:
            return self.pending.pop(0)
        for t in list(self.splitting):
            s = self.splitting[t]
            table = MySqlTable.from_dict(self.tables[t])
            if not table.chunk_key:
                raise ConfigError(f"table {t} has no primary key: give it a chunk key with "
                                  f"chunk-key-column = {{ \"{t}\" = \"<indexed column>\" }}",
                                  key="source.chunk-key-column")
            start = decode_key(s["next"])
            nxt = next_chunk_start(self._conn(), table, start, self.config.chunk_size)
            split = SnapshotSplit(f"{t}#{s['index']}", table=self.tables[t], index=s["index"],
                                  start=s["next"], end=encode_key(nxt))
            if nxt is None:
                del self.splitting[t]
            else:
                s["next"], s["index"] = encode_key(nxt), s["index"] + 1
            return split.to_dict()
        return None

    def add_splits_back(self, splits: list, subtask: int) -> None:
        for s in splits:
            if isinstance(s, BinlogSplit):
                self.binlog, self.binlog_assigned = s.to_dict(), False
            elif s.split_id not in self.finished:
                self.pending.append(s.to_dict())

    def handle_reader_event(self, subtask: int, event: dict[str, Any]) -> None:
        if self.binlog is not None or self.binlog_assigned or self.done:
            return  # a report repeated after a restore: the snapshot is already complete
        for d in event.get("finished", []):
            split = SnapshotSplit.from_dict(d)
            if split.split_id in self.finished:
                continue
            self.finished[split.split_id] = [split.table_id, split.start, split.end, split.high]
            if split.split_id not in self.assigned:
                self.assigned.append(split.split_id)
            if split.next_start is not None:
                # the open-ended last chunk was cut short: the rest is a new chunk
                t = split.table_id
                self.pending.append(SnapshotSplit(
                    f"{t}#{split.index + 1}", table=split.table, index=split.index + 1,
                    start=split.next_start, end=None).to_dict())
        self.context.set_gauge("snapshot_chunks_done", len(self.finished))
        self.context.set_gauge("snapshot_chunks_started", len(self.assigned))
        if self.snapshotting and not self._snapshot_open() and self.binlog is None and not self.done:
            self._snapshot_complete()

    def _snapshot_complete(self) -> None:
        chunks = list(self.finished.values())
        if self.config.startup_mode == "initial-only":
            self.done = True
            log.info("mysql: snapshot finished (%d chunks)", len(chunks))
        else:
            conn = self._conn()
            dialect = detect(conn)
            lows = [BinlogOffset.from_dict(c[3]) for c in chunks]
            if lows:
                low = min(lows, key=lambda o: o.key)
            else:
                low = dialect.binlog_status(conn)
            low = BinlogOffset(low.file, low.pos, dialect.gtid_at(conn, low))
            self.binlog = self._binlog_split(low, chunks).to_dict()
            log.info("mysql: snapshot finished (%d chunks); binlog from %s once checkpointed",
                     len(chunks), low)
        self.finished, self.assigned = {}, []
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
        # a deep copy: the coordinator keeps this until the checkpoint completes, while the
        # splitter goes on changing its own structures
        return copy.deepcopy({
            "tables": self.tables, "splitting": self.splitting, "pending": self.pending,
            "assigned": self.assigned, "finished": self.finished, "binlog": self.binlog,
            "binlog_assigned": self.binlog_assigned, "done": self.done})

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        if self.ready_at is not None and self.ready_at >= 0 and checkpoint_id >= self.ready_at:
            self.ready_at = None
            if self.binlog is not None and not self.binlog_assigned and self.waiting:
                self._assign_binlog(min(self.waiting))

    def _assign_binlog(self, subtask: int) -> None:
        assert self.binlog is not None
        self.context.assign_splits({subtask: [BinlogSplit.from_dict(self.binlog)]})
        self.binlog, self.binlog_assigned = None, True
        self.waiting.discard(subtask)
        for other in sorted(self.waiting):
            self.context.signal_no_more_splits(other)
        self.waiting.clear()

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001 - closing a connection that may be broken
                log.debug("mysql: enumerator connection close failed (ignored)")
            self.conn = None
