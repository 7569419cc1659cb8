"""The binlog split's fetch loop: reads the stream in a thread of its own, decodes the rows of
captured tables, follows DDL, and hands the reader *units*: batches and schema changes in
binlog order plus the offset right after them (a transaction boundary, or a point inside a huge
transaction with ``skip_rows``).  Reconnects resume from the offset of the last unit handed
over, which is the position the hub tracks, never from the connection's own idea of it."""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from runtime.batch import ChangeBatch
from runtime.errors import TerminalError, TransientError
from runtime.schema import SchemaChange
from sources.mysql import ddl
from sources.mysql.catalog import MySqlTable, TableFilter, describe
from sources.mysql.config import MySqlSourceConfig
from sources.mysql.dialect import Dialect
from sources.mysql.decoder import MISSING
from sources.mysql.events import RowsDecoder, complete
from sources.mysql.offset import BinlogOffset, version_of
from sources.mysql.protocol import (FORMAT_DESCRIPTION, HEARTBEAT, HEARTBEAT_V2, QUERY, ROTATE,
                                    ROW_EVENTS, TABLE_MAP, TRANSACTION_PAYLOAD, XID, BinlogClient,
                                    connect, query_of, rotate_target)
from sources.mysql.split import ChunkFilter

log = logging.getLogger("hub.sources.mysql")
_END_STATEMENTS = ("COMMIT", "ROLLBACK", "XA COMMIT", "XA END")


@dataclass
class Unit:
    items: list                       # ChangeBatch | SchemaChange, in binlog order
    offset: BinlogOffset              # right after the items
    tables: dict[str, dict | None]    # schema history changes (table id -> dict, None = dropped)
    lag_s: float = 0.0


@dataclass
class _Acc:
    """Row changes of one table since the last unit."""

    table: MySqlTable
    ops: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    before: list = field(default_factory=list)
    ts: list = field(default_factory=list)
    versions: list = field(default_factory=list)
    tx_start: int = 0

    def batch(self) -> ChangeBatch:
        has_before = any(b is not None for b in self.before)
        return ChangeBatch(self.table.schema, "".join(self.ops), rows=self.rows,
                           before=self.before if has_before else None, ts_ms=self.ts,
                           versions=self.versions)


class BinlogFetcher(threading.Thread):
    def __init__(self, config: MySqlSourceConfig, settings: dict[str, Any], dialect: Dialect,
                 server_id: int, offset: BinlogOffset, tables: dict[str, MySqlTable],
                 chunks: list, out: queue.Queue):
        super().__init__(name="mysql-binlog", daemon=True)
        self.config, self.settings, self.dialect = config, settings, dialect
        self.server_id = server_id
        self.offset = offset                 # of the last unit handed over
        self.tables = dict(tables)           # schema history at self.offset
        self.filter = ChunkFilter(chunks)
        self.accept = TableFilter(config.tables, config.tables_exclude)
        self.out = out
        self.stopped = threading.Event()
        self.decoder = RowsDecoder(config.zero_date == "null")
        self.lag_s = 0.0
        self._ctl: Any = None

    # -- the thread ---------------------------------------------------------------------------
    def run(self) -> None:
        failures = 0
        while not self.stopped.is_set():
            client = BinlogClient(self.settings, self.dialect, self.server_id,
                                  self.config.heartbeat_interval,
                                  max(3 * self.config.heartbeat_interval, 30.0))
            try:
                client.open(self.offset)
                self._stream(client)
                return
            except TransientError as exc:
                failures += 1
                if failures > self.config.connect_max_retries:
                    self._fail(exc)
                    return
                wait = min(0.5 * 2 ** (failures - 1), 30.0)
                log.warning("binlog: %s; reconnecting in %.1fs from %s (the last position "
                            "handed over)", exc, wait, self.offset)
                self.stopped.wait(wait)
            except BaseException as exc:  # noqa: BLE001 - handed to the reader, which raises it
                self._fail(exc)
                return
            finally:
                client.close()

    def _fail(self, exc: BaseException) -> None:
        if not self.stopped.is_set():
            self._put(exc)

    def _put(self, item: Any) -> None:
        while not self.stopped.is_set():
            try:
                self.out.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def stop(self) -> None:
        self.stopped.set()
        if self._ctl is not None:
            try:
                self._ctl.close()
            except Exception:  # noqa: BLE001 - closing a connection that may be broken
                pass

    # -- streaming ----------------------------------------------------------------------------
    def _lookup(self, table_id: str) -> MySqlTable | None:
        t = self.pending_tables.get(table_id, self.tables.get(table_id))
        if t is None and table_id not in self.pending_tables and self.accept(table_id):
            # a table created before our start position's history knew it: describe it now
            t = describe(self._control(), table_id, self.config.chunk_key_column)
            if t is not None:
                self.pending_tables[table_id] = t
                self.items_schema.append(SchemaChange("create_table", table_id, t.schema))
        return t

    def _control(self) -> Any:
        if self._ctl is None:
            self._ctl = connect(self.settings)
        return self._ctl

    def _stream(self, client: BinlogClient) -> None:
        cfg = self.config
        start = self.offset
        file = start.file
        gtid = self.dialect.new_gtid_state(start.gtid)
        skip = start.skip_rows
        tx_start, tx_rows = start, 0
        in_tx = False
        apply_gtid = None
        self.decoder.reset()
        self.accs: dict[str, _Acc] = {}
        self.pending_tables: dict[str, MySqlTable | None] = {}
        self.items_schema: list = []
        self.items: list = []
        pending_rows = 0
        last_cut = time.monotonic()
        boundary = start
        max_rows = cfg.fetch_size
        for ev in client.events():
            if self.stopped.is_set():
                return
            et = ev.type
            if et in ROW_EVENTS:
                if ev.timestamp:
                    self.lag_s = max(0.0, time.time() - ev.timestamp)
                got = self.decoder.rows(et, ev.body)
                if got is None:
                    continue
                n = self._add(got, file, ev.log_pos - ev.size, ev.timestamp * 1000, skip)
                if skip:
                    skip = max(0, skip - n[1])
                tx_rows += n[0] + n[1]
                pending_rows += n[0]
                if in_tx and pending_rows >= 4 * max_rows:
                    # a huge transaction: hand over what we have, resumable inside it
                    self._cut(tx_start.with_skip(tx_rows))
                    pending_rows, last_cut = 0, time.monotonic()
                continue
            if et == TABLE_MAP:
                self.decoder.table_map(ev.body, self._lookup)
                continue
            end = False
            if et == XID:
                end = True
            elif et == QUERY:
                db, sql = query_of(ev.body)
                head = sql.lstrip()[:10].upper()
                if head.startswith("BEGIN"):
                    in_tx = True
                elif head.startswith(_END_STATEMENTS):
                    end = True
                elif not in_tx:
                    end = True
                    self._ddl(db, sql, ev.timestamp * 1000, BinlogOffset(file, ev.log_pos))
            elif et == self.dialect.gtid_event_type:
                apply_gtid, standalone = self.dialect.on_gtid_event(gtid, ev.body, ev.server_id)
                in_tx = not standalone and self.dialect.name == "mariadb"
                continue
            elif et == ROTATE:
                file, _ = rotate_target(ev.body)
                continue
            elif et in (HEARTBEAT, HEARTBEAT_V2):
                self.lag_s = 0.0
                if (pending_rows or boundary != self.offset or self.items_schema) and not in_tx:
                    self._cut(boundary)
                    pending_rows, last_cut = 0, time.monotonic()
                continue
            elif et == TRANSACTION_PAYLOAD:
                raise TerminalError("the server compresses binlog transactions "
                                    "(binlog_transaction_compression = ON), which this source "
                                    "can't read: turn it off")
            elif et == FORMAT_DESCRIPTION or not ev.log_pos:
                continue
            if not end:
                continue
            # a transaction boundary
            in_tx = False
            if apply_gtid is not None:
                apply_gtid()
                apply_gtid = None
            commit_ms = ev.timestamp * 1000
            for acc in self.accs.values():
                if acc.tx_start < len(acc.ts):
                    acc.ts[acc.tx_start:] = [commit_ms] * (len(acc.ts) - acc.tx_start)
                acc.tx_start = len(acc.ts)
            boundary = BinlogOffset(file, ev.log_pos, str(gtid))
            tx_start, tx_rows, skip = boundary, 0, 0
            now = time.monotonic()
            if (pending_rows >= max_rows or self.items_schema or self.items
                    or now - last_cut >= cfg.flush_interval and (pending_rows or now - last_cut >= 1.0)):
                self._cut(boundary)
                pending_rows, last_cut = 0, now

    def _add(self, got: tuple, file: str, event_pos: int, ts_ms: int, skip: int) -> tuple[int, int]:
        """Append a decoded rows event; returns (rows added, rows skipped as already emitted)."""
        m, op, rows, full = got
        table = m.table
        assert table is not None
        acc = self.accs.get(table.table_id)
        if acc is None or acc.table is not table:
            if acc is not None:
                self._flush_table(table.table_id)
            acc = self.accs[table.table_id] = _Acc(table)
        base = version_of(file, event_pos)
        position = (int(file.rpartition(".")[2] or 0), event_pos)
        filt = self.filter if self.filter.active else None
        if full and filt is None and not skip and op != "u":
            n = len(rows)
            acc.ops.append(op * n)
            acc.rows.extend(rows)
            acc.before.extend([None] * n)
            acc.ts.extend([ts_ms] * n)
            acc.versions.extend(range(base, base + n))
            return n, 0
        added = skipped = 0
        key = m.key
        for i, r in enumerate(rows):
            if op == "u":
                before, after = r
                if not full:
                    after = complete(table, after, before)
                    # a partial before image is no before image (its absent columns are unknown)
                    if any(v is MISSING for v in before):
                        before = None
                if before is None or key(before) == key(after):
                    events = [("u", after, before)]
                else:  # the key changed: the old key is gone, the new one is new
                    events = [("d", before, None), ("c", after, None)]
            else:
                events = [(op, r if full else complete(table, r, None), None)]
            for e_op, row, before in events:
                if filt is not None and filt.reflected(table.table_id, key(row), position):
                    continue
                if skipped < skip:
                    skipped += 1
                    continue
                acc.ops.append(e_op)
                acc.rows.append(row)
                acc.before.append(before)
                acc.ts.append(ts_ms)
                acc.versions.append(base + i)
                added += 1
        return added, skipped

    def _flush_table(self, table_id: str) -> None:
        acc = self.accs.pop(table_id, None)
        if acc is not None and acc.rows:
            self.items.append(acc.batch())

    def _flush(self) -> None:
        for table_id in list(self.accs):
            self._flush_table(table_id)

    def _ddl(self, db: str, sql: str, ts_ms: int, position: BinlogOffset) -> None:
        parsed = ddl.parse(sql, db)
        if parsed is None:
            return
        kind, names, renames = parsed
        touched = [t for t in names if self.accept(t) or t in self.tables or t in self.pending_tables]
        if not touched:
            return
        self._flush()
        self.items.extend(self.items_schema)
        self.items_schema = []
        ctl = self._control()
        for t in touched:
            old = self.pending_tables[t] if t in self.pending_tables else self.tables.get(t)
            if kind == "drop" or (kind == "rename" and t in renames) or not self.accept(t):
                new = None
            elif kind == "truncate":
                new = old   # the schema stays; no need to ask the server
            else:
                new = describe(ctl, t, self.config.chunk_key_column)
            self.pending_tables[t] = new
            if self.config.include_schema_changes:
                self.items.extend(ddl.changes(kind, t, old, new, sql, ts_ms, position.to_dict()))
        self.decoder.reset()

    def _cut(self, offset: BinlogOffset) -> None:
        self._flush()
        items = self.items_schema + self.items if self.items_schema else self.items
        tables = {t: (v.to_dict() if v is not None else None) for t, v in self.pending_tables.items()}
        for t, v in self.pending_tables.items():
            if v is None:
                self.tables.pop(t, None)
            else:
                self.tables[t] = v
        unit = Unit(items, offset, tables, self.lag_s)
        self.items, self.items_schema, self.pending_tables = [], [], {}
        if self.filter.active and self.filter.passed(offset):
            self.filter = ChunkFilter([])
        self._put(unit)
        self.offset = offset

