"""The plug point between MySQL and MariaDB: binlog status, consistent snapshots, GTID events
and how a binlog dump is requested.  Everything flavour-specific lives here."""
from __future__ import annotations

import logging
import re
import struct
import time
from typing import Any

import pymysql

from runtime.errors import TerminalError, TransientError
from sources.mysql.offset import BinlogOffset, MariaDbGtidState, MySqlGtidSet

COM_BINLOG_DUMP, COM_BINLOG_DUMP_GTID = 0x12, 0x1E
UNKNOWN_VARIABLE = 1193
log = logging.getLogger("hub.sources.mysql")
_FENCE_WAIT_S = 30
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def owned_gtids(text: str) -> str:
    """``@@global.gtid_owned`` as a GTID set ``uuid:gno:gno,uuid2:gno``.  The server writes a
    uuid, then ``:gno#thread`` per owned GTID, and the next uuid right after the last thread
    id: a uuid's fixed 8-4-4-4-12 shape tells where it starts."""
    found = list(_UUID.finditer(text))
    out = []
    for i, m in enumerate(found):
        runs = text[m.end():found[i + 1].start() if i + 1 < len(found) else len(text)]
        gnos = re.findall(r":(\d+)#", runs)
        if gnos:
            out.append(m.group(0).lower() + "".join(f":{g}" for g in gnos))
    return ",".join(out)


class Dialect:
    """Base: what both flavours share.  Subclasses override the differences."""

    name = "mysql"
    gtid_event_type = 33

    def __init__(self) -> None:
        self._pinned: bool | None = None    # consistent_read can pin the binlog position

    def binlog_status(self, conn: Any) -> BinlogOffset:
        """The binlog end now: file, position, and the executed GTID state."""
        with conn.cursor() as cur:
            for sql in ("SHOW BINARY LOG STATUS", "SHOW MASTER STATUS"):
                try:
                    cur.execute(sql)
                    row = cur.fetchone()
                    break
                except Exception as exc:  # noqa: BLE001 - 8.4 renamed the statement
                    last = exc
            else:
                raise TerminalError(f"can't read the binlog position: {last}")
        if not row:
            raise TerminalError("the binary log is off: start the server with log-bin, "
                                "binlog-format=ROW and binlog-row-image=FULL")
        gtid = (row[4] if len(row) > 4 else "") or ""
        return BinlogOffset(row[0], int(row[1]), gtid.replace("\n", ""))

    def consistent_read(self, conn: Any) -> BinlogOffset | None:
        """Start a transaction whose reads match one binlog position exactly, and return that
        position; None when the server can't (the LOW/HIGH watermark backfill is then used).
        Percona Server pins the position like MariaDB does; MySQL does not."""
        if self._pinned is False:
            return None
        with conn.cursor() as cur:
            cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            cur.execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
            status = {str(k).lower(): v for k, v in cur.fetchall()}
            if "binlog_snapshot_position" not in status:
                cur.execute("COMMIT")
                self._pinned = False
                return None
        self._pinned = True
        return BinlogOffset(status["binlog_snapshot_file"], int(status["binlog_snapshot_position"]),
                            str(status.get("binlog_snapshot_gtid_executed") or "").replace("\n", ""))

    def low_watermark(self, conn: Any) -> BinlogOffset:
        """LOW for a chunk read by a SELECT that starts right after: a position such that every
        transaction before it in the binlog is visible to that SELECT.

        The binlog position a server reports includes transactions written to the binlog but
        not yet committed in InnoDB (MySQL commits in three stages: flush to the binlog, sync,
        then commit in the engine).  A SELECT in that window misses such a transaction, and a
        replay starting at the reported position misses it too: the chunk would lose it, and
        the binlog split would skip it as already reflected.  So after reading the position,
        wait until everything in flight then is committed: with GTIDs, the GTIDs owned at that
        moment (assigned at the flush, released after the engine commit) must reach
        ``gtid_executed``; without, the count of transactions in flight must be seen at zero.
        A transaction that enters the pipeline after the position was read lies after it, where
        the replay finds it."""
        low = self.binlog_status(conn)
        with conn.cursor() as cur:
            cur.execute("SELECT @@global.gtid_mode, @@global.gtid_owned")
            mode, owned = cur.fetchone()
            if str(mode).upper().startswith("ON"):
                gtids = owned_gtids(str(owned or ""))
                if gtids:
                    cur.execute("SELECT WAIT_FOR_EXECUTED_GTID_SET(%s, %s)", (gtids, _FENCE_WAIT_S))
                    if cur.fetchone()[0] != 0:
                        raise TransientError(
                            f"transactions {gtids} were written to the binlog but not committed "
                            f"within {_FENCE_WAIT_S}s; the snapshot chunk is retried")
                return low
            deadline = time.monotonic() + _FENCE_WAIT_S
            while True:
                cur.execute("SHOW GLOBAL STATUS LIKE 'Ongoing_anonymous_transaction_count'")
                row = cur.fetchone()
                if row is None or int(row[1]) == 0:
                    return low
                if time.monotonic() > deadline:
                    raise TransientError(
                        "the server never had zero transactions in its commit pipeline for "
                        f"{_FENCE_WAIT_S}s, which a lock-free snapshot chunk without GTIDs "
                        "waits for; set gtid_mode = ON (enforce_gtid_consistency = ON)")
                time.sleep(0.001)

    def gtid_at(self, conn: Any, offset: BinlogOffset) -> str:
        """The GTID state at ``offset`` (``offset.gtid`` when the server can't tell)."""
        return offset.gtid

    def new_gtid_state(self, text: str) -> Any:
        return MySqlGtidSet(text)

    def on_gtid_event(self, state: Any, body: bytes, server_id: int) -> tuple[Any, bool]:
        """Parse a GTID event: (a function adding this GTID to ``state`` at commit, whether
        the transaction is one standalone statement)."""
        sid = body[1:17].hex()
        uuid = f"{sid[:8]}-{sid[8:12]}-{sid[12:16]}-{sid[16:20]}-{sid[20:]}"
        gno = struct.unpack_from("<q", body, 17)[0]
        return (lambda: state.add(uuid, gno)), False

    def gtid_text(self, body: bytes, server_id: int) -> str:
        """The GTID of a GTID event as the server prints it (``uuid:n``)."""
        sid = body[1:17].hex()
        gno = struct.unpack_from("<q", body, 17)[0]
        return f"{sid[:8]}-{sid[8:12]}-{sid[12:16]}-{sid[16:20]}-{sid[20:]}:{gno}"

    def prepare_session(self, cur: Any) -> None:
        # MySQL 8.0.26+ reads the source_ name, older servers (and MariaDB) the master_ one
        cur.execute("SET @master_binlog_checksum = @@global.binlog_checksum, "
                    "@source_binlog_checksum = @@global.binlog_checksum")

    def dump_command(self, conn: Any, offset: BinlogOffset, server_id: int) -> bytes:
        if offset.gtid:
            return gtid_dump_command(MySqlGtidSet(offset.gtid), server_id)
        return (bytes([COM_BINLOG_DUMP]) + struct.pack("<IHI", offset.pos, 0, server_id)
                + offset.file.encode())


class MariaDbDialect(Dialect):
    name = "mariadb"
    gtid_event_type = 162

    def binlog_status(self, conn: Any) -> BinlogOffset:
        with conn.cursor() as cur:
            cur.execute("SHOW MASTER STATUS")
            row = cur.fetchone()
        if not row:
            raise TerminalError("the binary log is off: start the server with log-bin, "
                                "binlog-format=ROW and binlog-row-image=FULL")
        return BinlogOffset(row[0], int(row[1]))

    def low_watermark(self, conn: Any) -> BinlogOffset:
        return self.binlog_status(conn)   # not used: consistent_read always pins

    def consistent_read(self, conn: Any) -> BinlogOffset | None:
        # MariaDB pins the binlog position of a consistent snapshot without any global lock.
        with conn.cursor() as cur:
            cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            cur.execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
            status = dict(cur.fetchall())
        return BinlogOffset(status["Binlog_snapshot_file"], int(status["Binlog_snapshot_position"]))

    def gtid_at(self, conn: Any, offset: BinlogOffset) -> str:
        if offset.gtid:
            return offset.gtid
        with conn.cursor() as cur:
            cur.execute("SELECT BINLOG_GTID_POS(%s, %s)", (offset.file, offset.pos))
            row = cur.fetchone()
        return (row[0] or "") if row else ""

    def new_gtid_state(self, text: str) -> Any:
        return MariaDbGtidState(text)

    def on_gtid_event(self, state: Any, body: bytes, server_id: int) -> tuple[Any, bool]:
        seq, domain, flags = struct.unpack_from("<QIB", body, 0)
        return (lambda: state.add(domain, server_id, seq)), bool(flags & 0x01)

    def gtid_text(self, body: bytes, server_id: int) -> str:
        """The GTID of a GTID event as the server prints it (``domain-server-seq``)."""
        seq, domain = struct.unpack_from("<QI", body, 0)
        return f"{domain}-{server_id}-{seq}"

    def prepare_session(self, cur: Any) -> None:
        cur.execute("SET @master_binlog_checksum = @@global.binlog_checksum")
        # capability 4: the server sends GTID events as they are (not as dummies)
        cur.execute("SET @mariadb_slave_capability = 4")

    def dump_command(self, conn: Any, offset: BinlogOffset, server_id: int) -> bytes:
        if offset.gtid:
            with conn.cursor() as cur:
                cur.execute("SET @slave_connect_state = %s", (offset.gtid,))
                cur.execute("SET @slave_gtid_strict_mode = 1")
                cur.execute("SET @slave_gtid_ignore_duplicates = 0")
            return bytes([COM_BINLOG_DUMP]) + struct.pack("<IHI", 4, 0, server_id)
        return (bytes([COM_BINLOG_DUMP]) + struct.pack("<IHI", offset.pos, 0, server_id)
                + offset.file.encode())


def check_binlog_settings(conn: Any) -> bool:
    """Fail on a binlog the source can't read (not ROW); warn when table maps can't carry the
    schema (``binlog_row_metadata`` not FULL).  Returns whether they can."""
    with conn.cursor() as cur:
        cur.execute("SELECT @@global.binlog_format")
        fmt = str(cur.fetchone()[0] or "").upper()
        try:
            cur.execute("SELECT @@global.binlog_row_metadata")
            metadata = str(cur.fetchone()[0] or "").upper()
        except pymysql.err.MySQLError as exc:
            if exc.args[0] != UNKNOWN_VARIABLE:
                raise
            log.debug("mysql: no binlog_row_metadata on the server (%s): MINIMAL", exc)
            metadata = "MINIMAL"   # before MySQL 8.0.1 / MariaDB 10.5
    if fmt != "ROW":
        raise TerminalError(f"the server has binlog_format = {fmt}: the source reads row "
                            "images only; set binlog_format = ROW (and binlog_row_image = FULL)")
    if metadata != "FULL":
        log.warning(
            "mysql: the server has binlog_row_metadata = %s: table maps don't name their "
            "columns, so the binlog reader takes schemas from the server's catalog when it reads "
            "a DDL, which is wrong when it is behind a later DDL of the same table. Set "
            "binlog_row_metadata = FULL (MySQL 8.0.1+, MariaDB 10.5+) so that every row is "
            "decoded with the columns of its time", metadata)
    return metadata == "FULL"


def gtid_dump_command(gtids: MySqlGtidSet, server_id: int) -> bytes:
    """COM_BINLOG_DUMP_GTID: from the first transaction not in ``gtids`` (flag 0x04,
    BINLOG_THROUGH_GTID; no file name, position 4)."""
    data = gtids.encode()
    return (bytes([COM_BINLOG_DUMP_GTID]) + struct.pack("<HII", 0x04, server_id, 0)
            + struct.pack("<Q", 4) + struct.pack("<I", len(data)) + data)


def detect(conn: Any) -> Dialect:
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        version = cur.fetchone()[0]
    return MariaDbDialect() if "mariadb" in version.lower() else Dialect()
