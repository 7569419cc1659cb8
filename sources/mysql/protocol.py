"""A binlog client on the MySQL protocol (a PyMySQL connection does the handshake): requests
a dump from an offset and yields raw events.  No decoding here beyond the event header, so the
caller decides per event what is worth decoding.  Reconnecting is the caller's business: this
client never resumes on its own (the position that counts is the one the hub tracked).

Every dump this project asks for is a blocking one: the stream never ends on its own.  An end
(the EOF packet a server sends its replicas when it shuts down cleanly, a closed socket, or no
event nor heartbeat for several heartbeat periods) is a lost stream, a :class:`StreamLost`.

:func:`translate` words PyMySQL's errors for this source; whether one is transient or terminal
is decided by :mod:`formats.clients.mysql`, the classification the JDBC sink uses too."""
from __future__ import annotations

import functools
import logging
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from formats.clients import mysql as mysql_errors
from runtime.errors import HubError, TerminalError, TransientError
from sources.mysql.dialect import Dialect
from sources.mysql.offset import BinlogOffset

# event types
QUERY, ROTATE, FORMAT_DESCRIPTION, XID, TABLE_MAP = 2, 4, 15, 16, 19
WRITE_V1, UPDATE_V1, DELETE_V1 = 23, 24, 25
HEARTBEAT, WRITE_V2, UPDATE_V2, DELETE_V2 = 27, 30, 31, 32
PARTIAL_UPDATE_ROWS, TRANSACTION_PAYLOAD, HEARTBEAT_V2, GTID_TAGGED = 39, 40, 41, 42
MARIADB_GTID, MARIADB_GTID_LIST = 162, 163
ROW_EVENTS = {WRITE_V1: "c", UPDATE_V1: "u", DELETE_V1: "d", WRITE_V2: "c", UPDATE_V2: "u",
              DELETE_V2: "d"}
_HEADER = struct.Struct("<IBIIIH")

#: MySQL errors meaning the requested binlog or GTID is gone from the server.
PURGED_ERRORS = (1236,)
log = logging.getLogger("hub.sources.mysql")
T = TypeVar("T")


class BinlogPurgedError(TerminalError):
    """The position to resume from is no longer on the server."""


class StreamLost(TransientError):
    """The binlog stream ended: the server closed it (a shutdown), the connection broke, or it
    stayed silent past several heartbeat periods."""


def where(settings: dict[str, Any]) -> str:
    return f"{settings.get('host')}:{settings.get('port')}"


def translate(exc: BaseException, settings: dict[str, Any], what: str = "MySQL") -> BaseException:
    """A PyMySQL (or socket) error as the hub error a user can act on, transient or terminal
    as :mod:`formats.clients.mysql` classifies it: a refused login or a missing privilege
    names the user (retrying a wrong password only delays the one line that says so).  Hub
    errors and anything that is not a client error pass unchanged."""
    if isinstance(exc, HubError) or not mysql_errors.is_client_error(exc):
        return exc
    at = where(settings)
    kind = mysql_errors.kind(exc)
    code, text = mysql_errors.code_of(exc), mysql_errors.text_of(exc)
    user = settings.get("user")
    if kind is mysql_errors.Kind.REFUSED:
        return TerminalError(f"{what} at {at} refused user {user!r} (error {code}: {text}): "
                             "check username, password and grants")
    if kind is mysql_errors.Kind.DENIED:
        return TerminalError(f"{what} at {at}: user {user!r} lacks a privilege (error {code}: "
                             f"{text}): grant it")
    if kind.transient:
        detail = f"{text} (error {code})" if code else f"connection lost ({exc})"
        return TransientError(f"{what} at {at}: {detail}")
    if not code:
        return TerminalError(f"{what} at {at}: {text}")
    return TerminalError(f"{what} at {at} answered error {code}: {text}")


def translated(method: Callable[..., T]) -> Callable[..., T]:
    """For methods of the source's parts (which hold the source's ``config``): PyMySQL and
    socket errors leave them as the hub errors :func:`translate` makes of them, so that a lost
    connection is retried by the runtime instead of ending the pipeline as an internal error."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> T:
        import pymysql

        try:
            return method(self, *args, **kwargs)
        except (pymysql.err.MySQLError, OSError) as exc:
            raise translate(exc, self.config.connection_settings()) from exc

    return wrapper


@dataclass(slots=True)
class RawEvent:
    timestamp: int
    type: int
    server_id: int
    size: int
    log_pos: int   # position after this event in its file (0 for artificial events)
    flags: int
    body: bytes    # after the 19-byte header, checksum removed


@functools.cache
def _connection_class() -> type:
    """PyMySQL's connection, whose default TLS mode ("preferred": TLS when the server offers
    it) gets its context made once per process instead of once per connection: loading the
    system's CA certificates took ~25 ms of CPU per connection, and a snapshot opens one per
    reader and more for its enumerator.  (An SSLContext is safe to share between threads; two
    threads making the first one at once is harmless.  Explicit ``ssl`` settings still get a
    context of their own.)"""
    from pymysql.connections import Connection

    class _Connection(Connection):
        _preferred: Any = None

        def _create_ssl_ctx(self, sslp: Any) -> Any:
            if sslp:
                return super()._create_ssl_ctx(sslp)
            if _Connection._preferred is None:
                _Connection._preferred = super()._create_ssl_ctx({})
            return _Connection._preferred

    return _Connection


def connect(settings: dict[str, Any]) -> Any:
    import pymysql

    try:
        return _connection_class()(autocommit=True, **settings)
    except (pymysql.err.MySQLError, OSError) as exc:
        err = translate(exc, settings)
        if err.transient:
            raise TransientError(f"can't connect to MySQL at {where(settings)}: "
                                 f"{exc.args[-1] if exc.args else exc}") from None
        raise err from None


class BinlogClient:
    """One binlog dump connection.  ``events()`` yields until the connection ends, which it
    reports as an error: :class:`StreamLost` (transient), :class:`BinlogPurgedError`, or
    another terminal error (never a silent end)."""

    def __init__(self, settings: dict[str, Any], dialect: Dialect, server_id: int,
                 heartbeat_s: float, read_timeout_s: float):
        self.settings = {**settings, "read_timeout": read_timeout_s}
        self.dialect = dialect
        self.server_id = server_id
        self.heartbeat_s = heartbeat_s
        self.read_timeout_s = read_timeout_s
        self.conn: Any = None
        self.offset: BinlogOffset | None = None
        self.checksum = False
        self.server = f"{'MariaDB' if dialect.name == 'mariadb' else 'MySQL'} at {where(settings)}"

    def open(self, offset: BinlogOffset) -> None:
        import pymysql

        self.offset = offset
        self.conn = connect(self.settings)
        try:
            with self.conn.cursor() as cur:
                cur.execute("SELECT @@global.binlog_checksum")
                self.checksum = (cur.fetchone()[0] or "NONE").upper() != "NONE"
                self.dialect.prepare_session(cur)
                if self.heartbeat_s > 0:
                    period = int(self.heartbeat_s * 1e9)
                    cur.execute("SET @master_heartbeat_period = %s, @source_heartbeat_period = %s",
                                (period, period))
            self._register()
            cmd = self.dialect.dump_command(self.conn, offset, self.server_id)
            self.conn._next_seq_id = 0
            self.conn._write_bytes(struct.pack("<I", len(cmd))[:3] + b"\x00" + cmd)
            self.conn._next_seq_id = 1
        except (pymysql.err.MySQLError, OSError) as exc:
            raise translate(exc, self.settings, self.server.partition(" at ")[0]) from None

    def _register(self) -> None:
        # COM_REGISTER_SLAVE: makes the dump visible in SHOW SLAVE HOSTS with our server id
        host = b""
        body = (bytes([0x15]) + struct.pack("<I", self.server_id) + bytes([len(host)]) + host
                + b"\x00\x00" + struct.pack("<HII", 0, 0, 0))
        self.conn._next_seq_id = 0
        self.conn._write_bytes(struct.pack("<I", len(body))[:3] + b"\x00" + body)
        self.conn._next_seq_id = 1
        self.conn._read_packet()

    def events(self) -> Iterator[RawEvent]:
        import pymysql

        read = self.conn._read_packet
        unpack = _HEADER.unpack_from
        trim = 4 if self.checksum else 0
        while True:
            try:
                packet = read()
            except pymysql.err.OperationalError as exc:
                code = exc.args[0]
                if code in PURGED_ERRORS:
                    raise BinlogPurgedError(purged_message(
                        self.server, self.offset, str(exc.args[-1]))) from None
                if "timed out" in str(exc.args[-1]) and self.heartbeat_s > 0:
                    raise StreamLost(
                        f"{self.server} sent no event nor heartbeat for "
                        f"{self.read_timeout_s:g}s (heartbeat every {self.heartbeat_s:g}s): "
                        "the connection is taken as lost") from None
                err = translate(exc, self.settings, self.server.partition(" at ")[0])
                if err.transient:
                    raise StreamLost(f"{self.server}: binlog connection lost ({exc.args[-1]})") from None
                raise err from None
            except (pymysql.err.InterfaceError, OSError) as exc:
                raise StreamLost(f"{self.server}: binlog connection lost ({exc})") from None
            data = packet.get_all_data()
            if data[:1] == b"\xfe" and len(data) < 9:
                # EOF: what a server sends its replicas when it shuts down cleanly (our dumps
                # are blocking ones, they have no end of their own)
                raise StreamLost(f"{self.server} closed the stream (server shutdown?)")
            ts, etype, sid, size, log_pos, flags = unpack(data, 1)
            body = data[20:len(data) - trim] if trim and etype != FORMAT_DESCRIPTION else data[20:]
            if etype == FORMAT_DESCRIPTION and trim:
                body = body[:-4]
            yield RawEvent(ts, etype, sid, size, log_pos, flags, body)

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception as exc:  # noqa: BLE001 - the socket may already be gone
                # nothing is lost: the stream's position is the caller's, not this socket's
                log.debug("binlog: closing the dump connection to %s failed (%s); dropped",
                          self.server, exc)
            self.conn = None


def purged_message(server: str, offset: BinlogOffset | None, detail: str) -> str:
    """The one line for a position the server no longer has, with the complete remedy: a new
    snapshot rewrites every row that exists now, but can't know the rows deleted since the
    position, so they must go from the target first."""
    return (f"the binlog position {offset} to read from is gone from {server} ({detail}): the binlog "
            "was purged (or reset with RESET MASTER, or this is another server) before the hub "
            "read it, so changes in between are lost to it. Remedy: keep binlogs longer "
            "(binlog_expire_logs_seconds / expire_logs_days), then empty (TRUNCATE) or drop the "
            "target tables and run `hub run --fresh` for a new snapshot: --fresh alone leaves "
            "rows deleted at the source since then in the target")


def rotate_target(body: bytes) -> tuple[str, int]:
    pos = struct.unpack_from("<Q", body, 0)[0]
    return body[8:].decode(), pos


def query_of(body: bytes) -> tuple[str, str]:
    """(default database, statement) of a QUERY event."""
    db_len = body[8]
    status_len = struct.unpack_from("<H", body, 11)[0]
    start = 13 + status_len
    db = body[start:start + db_len].decode(errors="replace")
    return db, body[start + db_len + 1:].decode(errors="replace")
