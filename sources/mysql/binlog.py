"""The binlog split's fetch loop: reads the stream in a thread of its own, decodes the rows of
captured tables, follows DDL, and hands the reader *units*: batches and schema changes in
binlog order plus the offset right after them (a transaction boundary, or a point inside a huge
transaction with ``skip_rows``).  Reconnects resume from the offset of the last unit handed
over, which is the position the hub tracks, never from the connection's own idea of it.

Schemas follow the binlog, not the server's catalog of now.  With ``binlog_row_metadata =
FULL`` every TABLE_MAP names its columns, types, signedness, charsets, ENUM/SET members and
primary key: a DDL only marks its table as changed, and the schema it led to is read from the
table's next table map (or from the catalog when the stream is at the end of the binlog, where
both agree).  So a reader lagging behind several DDLs decodes each row with the columns of its
time, and emits the schema changes in order.  With MINIMAL metadata the catalog is the only
source: a DDL is described when it is read, which is exact only when no later DDL of the same
table happened yet (one warning says so).
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pymysql

from runtime.batch import ChangeBatch
from runtime.errors import HubError, TerminalError
from runtime.retry import Backoff
from runtime.schema import table_id as make_table_id
from sources.mysql import ddl
from sources.mysql.catalog import MySqlTable, TableFilter, describe
from sources.mysql.config import MySqlSourceConfig
from sources.mysql.decoder import MISSING, layout_matches
from sources.mysql.dialect import UNKNOWN_VARIABLE, Dialect
from sources.mysql.events import RowsDecoder, complete
from sources.mysql.offset import BinlogOffset, file_number, version_of
from sources.mysql.positions import Run, from_runs
from sources.mysql.protocol import (FORMAT_DESCRIPTION, GTID_TAGGED, HEARTBEAT, HEARTBEAT_V2,
                                    PARTIAL_UPDATE_ROWS, QUERY, ROTATE, ROW_EVENTS, TABLE_MAP,
                                    TRANSACTION_PAYLOAD, XID, BinlogClient, StreamLost, connect,
                                    query_of, rotate_target, translate)
from sources.mysql.chunkfilter import ChunkFilter
from sources.mysql.split import BinlogSplit, PendingDdl
from sources.mysql.tablemap import Charsets, TableMap, native_signature, table_from_map
from sources.mysql import watchdog
from sources.mysql.watchdog import StallWatchdog

log = logging.getLogger("hub.sources.mysql")
_END_STATEMENTS = ("COMMIT", "ROLLBACK", "XA COMMIT", "XA END")


def _tx_events(dialect: Dialect) -> frozenset[int]:
    """Events a transaction (or DDL) starts with: the first one a connection delivers is where
    the server resumed the stream (header events, heartbeats and skipped GTIDs don't count)."""
    return frozenset((dialect.gtid_event_type, QUERY, TABLE_MAP, XID))


def reconnect_policy(max_retries: int) -> Backoff:
    """The waits between reconnects of a lost stream: 0.5 s doubling up to 30 s, at most
    ``max_retries`` in a row without data (``connect-max-retries``; 0: no limit)."""
    return Backoff(initial_s=0.5, max_s=30.0, retries=max_retries or None, multiplier=2.0)


def silence_timeout(heartbeat_s: float) -> float:
    """How long a binlog connection may stay silent, the server sending heartbeats every
    ``heartbeat_s`` when it has nothing else, before it is taken as lost: a few periods (a
    loaded server sends them late), at least 5 s."""
    return max(5 * heartbeat_s, 5.0)


@dataclass
class Unit:
    items: list                       # ChangeBatch | SchemaChange, in binlog order
    offset: BinlogOffset              # right after the items
    tables: dict[str, MySqlTable | None]   # schema history changes (None = dropped)
    lag_s: float = 0.0
    #: unresolved DDL after the items (split.ddl)
    ddl: Mapping[str, tuple[PendingDdl, ...]] = field(default_factory=dict)
    fold_done: bool = False           # the re-read for newly added tables reached its end
    version_shift: int = 0            # split.version_shift for the items


@dataclass
class _Acc:
    """Row changes of one table since the last unit."""

    table: MySqlTable
    ops: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    before: list = field(default_factory=list)
    ts: list = field(default_factory=list)
    versions: list = field(default_factory=list)
    runs: list = field(default_factory=list)   # positions: one Run per rows event (or row)
    tx_start: int = 0
    has_before: bool = False                   # some entry of ``before`` is not None

    def batch(self) -> ChangeBatch:
        return ChangeBatch(self.table.schema, "".join(self.ops), rows=self.rows,
                           before=self.before if self.has_before else None, ts_ms=self.ts,
                           versions=self.versions, positions=from_runs(self.runs))


class BinlogFetcher(threading.Thread):
    def __init__(self, config: MySqlSourceConfig, settings: dict[str, Any], dialect: Dialect,
                 server_id: int, split: BinlogSplit, out: queue.Queue):
        super().__init__(name="mysql-binlog", daemon=True)
        self.config, self.settings, self.dialect = config, settings, dialect
        self.server_id = server_id
        self.offset = split.offset    # of the last unit handed over
        self.shift = split.version_shift
        self._tx_events = _tx_events(dialect)
        self.tables = dict(split.tables)
        self.pending_ddl: dict[str, list[PendingDdl]] = {t: list(v) for t, v in split.ddl.items()}
        self.adding = set(split.adding)
        self.fold_tables: set[str] | None = set(split.fold.tables) if split.fold else None
        self.fold_until = split.fold.until if split.fold else None
        self.fold_done = False
        self.filter = ChunkFilter(split.chunks)
        self.accept = TableFilter(config.tables, config.tables_exclude)
        self.out = out
        self.stopped = threading.Event()
        self.decoder = RowsDecoder(config.zero_date == "null", dialect.name == "mariadb")
        self.lag_s = 0.0
        self.full_metadata = True
        self.charsets: Charsets | None = None
        self.handed = False                  # a unit went out since the last connection failure
        self._ctl: Any = None
        self._client: BinlogClient | None = None
        #: what the thread does now, for the stall watchdog's line
        self.state = "starting"
        self.reported = False                  # an error went to the reader
        self.aborted: BaseException | None = None
        self.silence_s = silence_timeout(config.heartbeat_interval)
        self.last_end: tuple[str, int] | None = None
        self.watchdog = StallWatchdog(self, max(10 * config.heartbeat_interval,
                                                watchdog.MIN_PERIOD_S))
        self._warned_minimal = False

    # -- the thread ---------------------------------------------------------------------------
    def run(self) -> None:
        """Stream until stopped.  A lost stream (the server shut down, the connection broke or
        went silent) is resumed here, from the offset of the last unit handed over: the
        reader's state is exactly that offset, so nothing is read twice or skipped, and
        nothing else in the pipeline has to start over.  This is the stream's one retry
        policy: it waits with a backoff (:func:`reconnect_policy`, the runtime's one
        :class:`~runtime.retry.Backoff`: 0.5 s doubling up to 30 s) and says so at every
        attempt; it gives up only after ``connect-max-retries`` attempts in a row without data
        (0: never), and then for good (a terminal error: escalating to the runtime's restart
        would only nest another retry loop around this one).  Terminal errors (access denied,
        a purged position) end it at once.  The thread never ends without handing the reader
        an error, unless it was stopped."""
        self.watchdog.start()
        policy = reconnect_policy(self.config.connect_max_retries)
        attempt, checked = 0, False
        while not self.stopped.is_set():
            client = BinlogClient(self.settings, self.dialect, self.server_id,
                                  self.config.heartbeat_interval,
                                  self.silence_s)
            self._client = client
            try:
                self.state = "connecting"
                if not checked:
                    self._check_server()
                    checked = True
                client.open(self.offset)
                self.state = "reading"
                self._stream(client)
                if self.stopped.is_set():
                    return
                raise StreamLost(f"{client.server}: the binlog stream ended")
            except BaseException as exc:  # noqa: BLE001 - retried, or handed to the reader
                if self.stopped.is_set():
                    return
                err = self.aborted or translate(exc, self.settings)
                if not isinstance(err, HubError) or not err.transient:
                    self._fail(err)
                    return
                # the count starts over once the stream handed over data again
                attempt = 1 if self.handed else attempt + 1
                self.handed = False
                if policy.exhausted(attempt):
                    self._fail(TerminalError(f"binlog: {err}; gave up after {policy.retries} "
                                             "reconnects in a row without data "
                                             "(connect-max-retries)"))
                    return
                wait = policy.delay(attempt)
                self.state = f"waiting to reconnect (attempt {attempt})"
                log.warning("binlog: %s; reconnecting in %gs (attempt %d) from %s, the last "
                            "position handed over", err, wait, attempt, self.offset)
                self._drop_control()   # on the same server: broken too
                self.stopped.wait(wait)
            finally:
                client.close()

    def _check_server(self) -> None:
        """How the server writes table maps (the enumerator warned about MINIMAL already)."""
        with self._control().cursor() as cur:
            try:
                cur.execute("SELECT @@global.binlog_row_metadata")
                self.full_metadata = str(cur.fetchone()[0] or "").upper() == "FULL"
            except pymysql.err.MySQLError as exc:
                if exc.args[0] != UNKNOWN_VARIABLE:
                    raise
                # servers before MySQL 8.0.1 / MariaDB 10.5 (the enumerator warned already)
                log.debug("binlog: no binlog_row_metadata on the server (%s): MINIMAL", exc)
                self.full_metadata = False

    def _fail(self, exc: BaseException) -> None:
        if not self.stopped.is_set():
            self.reported = True
            self.state = f"ended by an error ({exc})"
            self._put(exc)

    def _put(self, item: Any) -> None:
        state, self.state = self.state, "handing over (the pipeline downstream is slow)"
        try:
            self._put_waiting(item)
        finally:
            self.state = state

    def _put_waiting(self, item: Any) -> None:
        while not self.stopped.is_set():
            try:
                self.out.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def abort(self, err: BaseException) -> None:
        """End the stream with ``err`` (from another thread: the watchdog)."""
        self.aborted = err
        if self._client is not None:
            self._client.close()   # wakes the read; the loop hands ``err`` over

    def stop(self) -> None:
        """Stop the thread; closing the dump connection wakes a read that waits for data."""
        self.stopped.set()
        self.watchdog.stop()
        if self._client is not None:
            self._client.close()
        self._drop_control()

    def _drop_control(self) -> None:
        ctl, self._ctl = self._ctl, None
        if ctl is not None:
            try:
                ctl.close()
            except Exception as exc:  # noqa: BLE001 - closing a connection that may be broken
                # nothing is lost: it only read the catalog, a new one is opened when needed
                log.debug("binlog: closing the control connection failed (%s); dropped", exc)

    def _control(self) -> Any:
        if self._ctl is None:
            self._ctl = connect(self.settings)
        return self._ctl

    # -- which tables, with which columns -----------------------------------------------------
    def _captures(self, table_id: str) -> bool:
        if self.fold_tables is not None and table_id not in self.fold_tables:
            return False  # re-reading for newly added tables: the others are emitted already
        return table_id not in self.adding and self.accept(table_id)

    def _current(self, table_id: str) -> MySqlTable | None:
        if table_id in self.pending_tables:
            return self.pending_tables[table_id]
        return self.tables.get(table_id)

    def _set(self, table_id: str, table: MySqlTable | None, changes: list) -> None:
        """Change the history of ``table_id``; ``changes`` go out after its rows so far."""
        self._flush_table(table_id)
        self.pending_tables[table_id] = table
        if self.config.include_schema_changes:
            self.items.extend(changes)

    def _resolve(self, tmap: TableMap) -> MySqlTable | None:
        """The captured table a table map maps to, with the columns the map describes; a
        difference from the history (a DDL read before, or one this reader never saw)
        becomes schema-change events here, before the rows that follow."""
        table_id = make_table_id(tmap.db, tmap.table)
        if not self._captures(table_id):
            return None
        known = self._current(table_id)
        pending = self.pending_ddl.get(table_id)
        ckc = self.config.chunk_key_column
        if tmap.full:
            if self.charsets is None:
                self.charsets = Charsets().load(self._control())
            if known is not None and not pending:
                cand = table_from_map(tmap, self.charsets, ckc, (known,))
                if _same(cand, known):
                    return known
            new = table_from_map(tmap, self.charsets, ckc,
                                 (known, describe(self._control(), table_id, ckc)))
        else:
            if known is not None and not pending and layout_matches(tmap, known):
                return known
            if known is not None and not self._warned_minimal:
                self._warned_minimal = True
                log.warning("binlog: %s changed and its table maps carry no column names "
                            "(binlog_row_metadata = MINIMAL): using the server's description "
                            "of now, which is wrong if a later DDL changed it again. Set "
                            "binlog_row_metadata = FULL", table_id)
            new = describe(self._control(), table_id, ckc)
            if new is None:
                return None
        ev = self._map_event
        self._apply(table_id, new, ev.timestamp * 1000, BinlogOffset(self.last_end[0], ev.log_pos))
        return new

    def _apply(self, table_id: str, new: MySqlTable | None, ts_ms: int,
               position: BinlogOffset) -> None:
        """Resolve ``table_id``'s pending DDL (or an unseen change) to ``new``."""
        old = self._current(table_id)
        entries = self.pending_ddl.pop(table_id, [])
        if entries:
            kind = entries[-1].kind
            sql = ";\n".join(e.sql for e in entries)
            ts_ms, pos = entries[-1].ts_ms, entries[-1].position.to_dict()
        else:
            kind, sql, pos = "alter", "", position.to_dict()
        if old is None and new is None:
            return
        self._set(table_id, new, ddl.changes(kind, table_id, old, new, sql, ts_ms, pos))

    def _resolve_caught_up(self) -> None:
        """At the end of the binlog the catalog describes the tables as the last DDL left
        them: resolve pending DDL now rather than at the next row."""
        if not self.pending_ddl or self.last_end is None:
            return
        ctl = self._control()
        end = self.dialect.binlog_status(ctl)
        if (end.file, end.pos) != self.last_end:
            return
        described = {t: describe(ctl, t, self.config.chunk_key_column) for t in self.pending_ddl}
        end = self.dialect.binlog_status(ctl)
        if (end.file, end.pos) != self.last_end:
            return  # a DDL may have come in while we described: the next table map decides
        for t, new in described.items():
            self._apply(t, new, 0, BinlogOffset(*self.last_end))
        self.decoder.reset()

    # -- streaming ----------------------------------------------------------------------------
    def _stream(self, client: BinlogClient) -> None:
        cfg = self.config
        start = self.offset
        file = start.file
        gtid = self.dialect.new_gtid_state(start.gtid)
        skip = start.skip_rows
        tx_start, tx_rows = start, 0
        in_tx = False
        apply_gtid = None
        tx_gtid: str | None = None   # of the transaction being read, for positions
        self.decoder.reset()
        self.accs: dict[str, _Acc] = {}
        self.pending_tables: dict[str, MySqlTable | None] = {}
        self.items: list = []
        self.last_end: tuple[str, int] | None = None
        if self.fold_until is not None and not start.is_before(self.fold_until):
            self._end_fold()
        pending_rows = 0
        last_cut = time.monotonic()
        boundary = start
        max_rows = cfg.fetch_size
        resolve = self._resolve
        maps = self.decoder.maps
        file_no = file_number(file)
        check_start = True   # until the first transaction delivered: does it start lower?
        for ev in client.events():
            if self.stopped.is_set():
                return
            et = ev.type
            if et in ROW_EVENTS:
                if ev.timestamp:
                    self.lag_s = max(0.0, time.time() - ev.timestamp)
                if self.filter.below:
                    # before its chunks' lowest HIGH, a snapshotted table's changes are all
                    # in the snapshot: skipped without decoding
                    m = maps.get(int.from_bytes(ev.body[0:6], "little"))
                    if (m is not None and m.table is not None and self.filter.all_reflected(
                            m.table.table_id, (file_no, ev.log_pos - ev.size))):
                        continue
                got = self.decoder.rows(et, ev.body)
                if got is None:
                    continue
                n = self._add(got, file, ev.log_pos - ev.size, ev.timestamp * 1000, skip,
                              ev.server_id, tx_gtid)
                if skip:
                    skip = max(0, skip - n[1])
                tx_rows += n[0] + n[1]
                pending_rows += n[0]
                if in_tx and pending_rows >= 4 * max_rows:
                    # a huge transaction: hand over what we have, resumable inside it
                    self._cut(tx_start.with_skip(tx_rows))
                    pending_rows, last_cut = 0, time.monotonic()
                continue
            if ev.log_pos:
                self.last_end = (file, ev.log_pos)
                if check_start and et in self._tx_events:
                    check_start = False
                    self._check_lower(start, file, ev.log_pos - ev.size)
            if et == TABLE_MAP:
                self._map_event = ev
                self.decoder.table_map(ev.body, resolve)
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
                tx_gtid = self.dialect.gtid_text(ev.body, ev.server_id)
                in_tx = not standalone and self.dialect.name == "mariadb"
                continue
            elif et == ROTATE:
                new_file, new_pos = rotate_target(ev.body)
                if ev.log_pos and file_number(new_file) < file_no:
                    self._check_lower(BinlogOffset(file, ev.log_pos), new_file, new_pos)
                file = new_file
                file_no = file_number(file)
                continue
            elif et in (HEARTBEAT, HEARTBEAT_V2):
                self.lag_s = 0.0
                if not in_tx:
                    if self.pending_ddl:
                        self._resolve_caught_up()
                    if pending_rows or boundary != self.offset or self.items:
                        self._cut(boundary)
                        pending_rows, last_cut = 0, time.monotonic()
                continue
            elif et == TRANSACTION_PAYLOAD:
                raise TerminalError("the server compresses binlog transactions "
                                    "(binlog_transaction_compression = ON), which this source "
                                    "can't read: turn it off")
            elif et == GTID_TAGGED:
                raise TerminalError("the server wrote a tagged GTID (MySQL 8.3+ gtid_next = "
                                    "'AUTOMATIC:<tag>'), which this source can't track: don't "
                                    "tag transactions of captured databases")
            elif et == PARTIAL_UPDATE_ROWS:
                raise TerminalError("the server writes partial JSON updates "
                                    "(binlog_row_value_options = PARTIAL_JSON), which carry no "
                                    "full row image: set binlog_row_value_options = ''")
            elif et == FORMAT_DESCRIPTION or not ev.log_pos:
                continue
            if not end:
                continue
            # a transaction boundary
            in_tx = False
            if apply_gtid is not None:
                apply_gtid()
                apply_gtid = None
            tx_gtid = None
            commit_ms = ev.timestamp * 1000
            for acc in self.accs.values():
                if acc.tx_start < len(acc.ts):
                    acc.ts[acc.tx_start:] = [commit_ms] * (len(acc.ts) - acc.tx_start)
                acc.tx_start = len(acc.ts)
            boundary = BinlogOffset(file, ev.log_pos, str(gtid))
            tx_start, tx_rows, skip = boundary, 0, 0
            if self.fold_until is not None and not boundary.is_before(self.fold_until):
                self._end_fold()
            now = time.monotonic()
            if (pending_rows >= max_rows or self.items or self.fold_done
                    or now - last_cut >= cfg.flush_interval and (pending_rows or now - last_cut >= 1.0)):
                self._cut(boundary)
                pending_rows, last_cut = 0, now

    def _check_lower(self, before: BinlogOffset, file: str, pos: int) -> None:
        """The stream goes on at ``file:pos`` after ``before``: when that is lower (a failover
        by GTID to a server with a shorter binlog), shift versions so that they keep rising
        past every version emitted so far (all below ``before``'s)."""
        here = BinlogOffset(file, pos)
        if not here.is_before(before):
            return
        self.shift += before.version - here.version + 1
        log.warning("binlog: the stream goes on at %s, below %s where it was (another server "
                    "after a failover?): versions of changes are shifted by %d so that they keep "
                    "rising", here, before, self.shift)

    def _end_fold(self) -> None:
        """Back where the stream was when the newly added tables were folded in: from here on
        every captured table is read."""
        self.fold_tables, self.fold_until, self.fold_done = None, None, True
        self.decoder.reset()

    def _add(self, got: tuple, file: str, event_pos: int, ts_ms: int, skip: int,
             server_id: int = 0, gtid: str | None = None) -> tuple[int, int]:
        """Append a decoded rows event; returns (rows added, rows skipped as already emitted).
        Whole events go in with list operations; only partial images, key changes, chunk
        filtering and skipping take the per-row loop."""
        m, op, rows, full = got
        table = m.table
        assert table is not None
        acc = self.accs.get(table.table_id)
        if acc is None or acc.table is not table:
            if acc is not None:
                self._flush_table(table.table_id)
            acc = self.accs[table.table_id] = _Acc(table)
        base = version_of(file, event_pos) + self.shift
        filt = self.filter if self.filter.active else None
        if full and filt is None and not skip:
            n = len(rows)
            if op != "u":
                acc.rows.extend(rows)
                acc.before.extend([None] * n)
            else:
                befores, afters = zip(*rows) if n else ((), ())
                kv = m.key_values
                if kv is not None and list(map(kv, befores)) != list(map(kv, afters)):
                    return self._add_rows(acc, m, op, rows, full, base, file, event_pos, ts_ms,
                                          0, server_id, gtid, None)
                acc.rows.extend(afters)
                acc.before.extend(befores)
                acc.has_before = True
            acc.ops.append(op * n)
            acc.ts.extend([ts_ms] * n)
            acc.versions.extend(range(base, base + n))
            acc.runs.append(Run(n, file, event_pos, server_id, gtid))
            return n, 0
        return self._add_rows(acc, m, op, rows, full, base, file, event_pos, ts_ms, skip,
                              server_id, gtid, filt)

    def _add_rows(self, acc: _Acc, m: Any, op: str, rows: list, full: bool, base: int,
                  file: str, event_pos: int, ts_ms: int, skip: int, server_id: int,
                  gtid: str | None, filt: ChunkFilter | None) -> tuple[int, int]:
        """The per-row path of :meth:`_add`."""
        table, key = m.table, m.key
        position = (int(file.rpartition(".")[2] or 0), event_pos)
        added = skipped = 0
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
                if before is not None:
                    acc.has_before = True
                acc.ts.append(ts_ms)
                acc.versions.append(base + i)
                acc.runs.append(Run(1, file, event_pos, server_id, gtid, i))
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
        touched = [t for t in names if self._captures(t)
                   or (self._current(t) is not None and self.fold_tables is None)]
        if not touched:
            return
        for t in touched:
            old = self._current(t)
            if kind == "drop" or (kind == "rename" and t in renames) or not self.accept(t):
                self.pending_ddl.pop(t, None)
                if old is not None:
                    self._set(t, None, ddl.changes("drop", t, old, None, sql, ts_ms, position.to_dict()))
            elif kind == "truncate":
                if old is not None:
                    self._set(t, old, ddl.changes(kind, t, old, old, sql, ts_ms, position.to_dict()))
            elif self.full_metadata:
                # the columns this led to are in the table's next table map
                self._flush_table(t)
                self.pending_ddl.setdefault(t, []).append(PendingDdl(kind, sql, ts_ms, position))
            else:
                new = describe(self._control(), t, self.config.chunk_key_column)
                self._set(t, new, ddl.changes(kind, t, old, new, sql, ts_ms, position.to_dict()))
        self.decoder.reset()
        if self.pending_ddl:
            self._resolve_caught_up()

    def _cut(self, offset: BinlogOffset) -> None:
        self._flush()
        tables = self.pending_tables
        for t, v in tables.items():
            if v is None:
                self.tables.pop(t, None)
            else:
                self.tables[t] = v
        # tuples of immutable entries: the unit's view stays as it is while the lists grow
        ddl = {t: tuple(v) for t, v in self.pending_ddl.items()} if self.pending_ddl else {}
        unit = Unit(self.items, offset, tables, self.lag_s, ddl, self.fold_done, self.shift)
        self.items, self.pending_tables = [], {}
        if self.filter.active and self.filter.passed(offset):
            self.filter = ChunkFilter([])
        self.fold_done = False
        self._put(unit)
        self.offset = offset
        self.handed = True


def _same(a: MySqlTable, b: MySqlTable) -> bool:
    """Same columns for decoding and for sinks (names, types, nullability, key)."""
    return (a.schema.primary_key == b.schema.primary_key
            and [c.nullable for c in a.schema.columns] == [c.nullable for c in b.schema.columns]
            and [native_signature(n) for n in a.natives] == [native_signature(n) for n in b.natives])
