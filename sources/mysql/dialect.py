"""The plug point between MySQL and MariaDB: binlog status, consistent snapshots, GTID events
and how a binlog dump is requested.  Everything flavour-specific lives here."""
from __future__ import annotations

import struct
from typing import Any

from runtime.errors import TerminalError
from sources.mysql.offset import BinlogOffset, MariaDbGtidState, MySqlGtidSet

COM_BINLOG_DUMP, COM_BINLOG_DUMP_GTID = 0x12, 0x1E


class Dialect:
    """Base: what both flavours share.  Subclasses override the differences."""

    name = "mysql"
    gtid_event_type = 33

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
        position; None when the flavour can't (the LOW/HIGH watermark backfill is then used)."""
        return None

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

    def prepare_session(self, cur: Any) -> None:
        cur.execute("SET @master_binlog_checksum = @@global.binlog_checksum")

    def dump_command(self, conn: Any, offset: BinlogOffset, server_id: int) -> bytes:
        if offset.gtid:
            from pymysqlreplication.gtid import GtidSet

            gs = GtidSet(offset.gtid)
            payload = (struct.pack("<H", 0x04) + struct.pack("<I", server_id) + struct.pack("<I", 3)
                       + b"\0\0\0" + struct.pack("<Q", 4) + struct.pack("<I", gs.encoded_length)
                       + gs.encoded())
            return bytes([COM_BINLOG_DUMP_GTID]) + payload
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


def detect(conn: Any) -> Dialect:
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        version = cur.fetchone()[0]
    return MariaDbDialect() if "mariadb" in version.lower() else Dialect()
