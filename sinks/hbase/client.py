"""The HBase Thrift connection (happybase): tables created on demand, and ``mutateRowsTs``
calls encoded a column at a time (:class:`MutationCodec`), sent with retries and reconnects."""
from __future__ import annotations

import logging
import socket
import struct
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from runtime.errors import ConfigError, MissingExtraError, TerminalError, TransientError
from runtime.retry import Backoff, retry
from sinks.hbase.config import HBaseSinkConfig
from sinks.hbase.types import fixed_width

try:
    import happybase
    from thriftpy2.protocol import TBinaryProtocol, TCompactProtocol
    from thriftpy2.thrift import TApplicationException, TMessageType
    from thriftpy2.transport import TTransportException

    import Hbase_thrift  # type: ignore[import-not-found]  # loaded by happybase
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
    raise MissingExtraError("happybase", "hbase") from exc

log = logging.getLogger(__name__)

_RETRYABLE = (TTransportException, socket.error, EOFError, Hbase_thrift.IOError)
_PROTOCOLS = {"binary": TBinaryProtocol, "compact": TCompactProtocol}
# Thrift type ids of the binary protocol, and what the compact protocol calls them.
_BOOL, _I64, _STRING, _STRUCT, _MAP, _LIST = 2, 10, 11, 12, 13, 15
_COMPACT = {_I64: 6, _STRING: 8, _LIST: 9, _MAP: 11, _STRUCT: 12}
_STOP = b"\x00"
_METHOD = b"mutateRowsTs"


class HBaseClient:
    """One Thrift connection, opened on first use.  Thread-confined."""

    def __init__(self, config: HBaseSinkConfig):
        self.config = config
        self._conn: Any = None
        self._proto: Any = None
        self._ready: set[str] = set()

    def connection(self) -> Any:
        if self._conn is None:
            cfg = self.config
            self._conn = happybase.Connection(
                cfg.host, cfg.port, timeout=int(cfg.timeout * 1000), autoconnect=False,
                transport=cfg.transport, protocol=cfg.protocol)
            self._conn.open()
            self._proto = _PROTOCOLS[cfg.protocol](self._conn.transport, decode_response=False)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - the socket may already be gone
                log.debug("hbase: error while closing the connection (ignored)", exc_info=True)
            self._conn = self._proto = None

    def tables(self) -> list[bytes]:
        """The server's table names (one call, with this client's retries)."""
        return self._call(lambda c: c.client.getTableNames(), "listing tables")

    def ensure_table(self, name: str, families: list[str]) -> None:
        """Create ``name`` with ``families`` when missing (``create-table``); fail with one
        line when it lacks one of them (Thrift1 can't add families to a table)."""
        if name in self._ready:
            return
        have = self._call(lambda c: c.client.getColumnDescriptors(name.encode())
                          if name.encode() in c.client.getTableNames() else None,
                          f"describing table {name}")
        if have is None:
            if not self.config.create_table:
                raise ConfigError(f"hbase: table {name!r} does not exist and create-table is "
                                  "false", key="table")
            descriptors = {f: {"max_versions": self.config.max_versions} for f in families}
            try:
                self._call(lambda c: c.create_table(name, descriptors), f"creating table {name}")
                log.info("hbase: created table %s with families %s", name, ", ".join(families))
            except AlreadyExists:
                log.debug("hbase: table %s was created meanwhile by another writer", name)
        else:
            existing = {k.decode().rstrip(":") for k in have}
            missing = [f for f in families if f not in existing]
            if missing:
                raise ConfigError(f"hbase: table {name!r} has no column family "
                                  f"{missing[0]!r} (it has {', '.join(sorted(existing))}); "
                                  "add it in the HBase shell or change column-families",
                                  key="column-families")
        self._ready.add(name)

    def mutate(self, table: str, request: bytes, rows: int) -> None:
        """Send a ``mutateRowsTs`` call message (from :meth:`MutationCodec.request`) and wait
        for its answer."""
        def call(conn: Any) -> None:
            conn.transport.write(request)
            conn.transport.flush()
            self._answer()
        self._call(call, f"writing {rows} rows to {table}")

    def _answer(self) -> None:
        """Read the reply to a ``mutateRowsTs`` call (as thriftpy2's client does) and raise
        the error it carries."""
        proto = self._proto
        _name, kind, _seqid = proto.read_message_begin()
        if kind == TMessageType.EXCEPTION:
            error = TApplicationException()
            error.read(proto)
            proto.read_message_end()
            raise error
        result = Hbase_thrift.Hbase.mutateRowsTs_result()
        result.read(proto)
        proto.read_message_end()
        if result.io is not None:
            raise result.io
        if result.ia is not None:
            raise result.ia

    def _call(self, fn: Any, what: str) -> Any:
        """``fn(connection)`` with the retries of ``max-retries`` / ``retry-backoff`` on
        transient errors (:func:`translate`), each after dropping the connection (a broken
        transport can't be reused)."""
        policy = Backoff(self.config.retry_backoff, 10.0, self.config.max_retries)
        return retry(lambda: self._once(fn, what), policy, f"hbase: {what}", log,
                     on_retry=lambda _exc: self.close())

    def _once(self, fn: Any, what: str) -> Any:
        try:
            return fn(self.connection())
        except Exception as exc:  # noqa: BLE001 - translate() re-raises what it doesn't know
            raise translate(exc, what) from None


class AlreadyExists(TerminalError):
    """A table to create exists (another writer made it meanwhile)."""


def translate(exc: Exception, what: str) -> Exception:
    """The one error translation of this client: ``exc`` (raised by a Thrift call for
    ``what``) as a :class:`~runtime.errors.HubError` naming it.  A lost or broken connection
    and the server's IOError (its own HBase client gave up) are transient; an illegal argument
    terminal; anything else is returned as it is."""
    if isinstance(exc, Hbase_thrift.IllegalArgument):
        return TerminalError(f"hbase: {what}: {_first_line(exc.message)}")
    if isinstance(exc, Hbase_thrift.AlreadyExists) or (
            isinstance(exc, Hbase_thrift.IOError)
            and b"TableExistsException" in _bytes(exc.message)):
        # the server says AlreadyExists when the table was there before the call, and an
        # IOError carrying HBase's TableExistsException when another client created it while
        # the call ran (two appliers creating a table at once)
        return AlreadyExists(f"hbase: {what}: AlreadyExists: {_first_line(exc.message)}")
    if isinstance(exc, _RETRYABLE):
        message = getattr(exc, "message", None)
        problem = _first_line(message) if message else f"{type(exc).__name__}: {exc}"
        return TransientError(f"hbase: {what}: {problem}")
    return exc


def _bytes(text: str | bytes | None) -> bytes:
    if text is None:
        return b""
    return text if isinstance(text, bytes) else text.encode("utf-8", "replace")


def _first_line(text: str | bytes | None) -> str:
    """The first line of a server message (an HBase IOError carries the whole Java stack
    trace), at most 500 characters: error lines are one line."""
    line = _bytes(text).decode("utf-8", "replace").strip().split("\n", 1)[0]
    return line[:500]


class MutationCodec:
    """``mutateRowsTs`` calls built a column at a time, for the Thrift binary or compact
    protocol: no Thrift object per cell, Arrow string joins over whole columns instead.

    :meth:`rows` gives each row's ``BatchMutation`` struct as one binary value, from cells made
    by :meth:`cells` (or constant ones); :meth:`request` frames a run of rows as the call
    message, byte for byte what thriftpy2 writes for ``mutateRowsTs(table, rows, ts, {})``
    (the unit tests compare).  The mutations are happybase's: a put is ``isDelete=false,
    column, value, writeToWAL=true``, a delete ``isDelete=true, column, writeToWAL=true``.
    """

    def __init__(self, protocol: str):
        self.compact = protocol == "compact"

    # -- the parts of a message -----------------------------------------------------------------
    @staticmethod
    def _varint(n: int) -> bytes:
        out = bytearray()
        while n > 0x7F:
            out.append((n & 0x7F) | 0x80)
            n >>= 7
        out.append(n)
        return bytes(out)

    def _text(self, value: bytes) -> bytes:
        size = self._varint(len(value)) if self.compact else struct.pack(">i", len(value))
        return size + value

    def _lengths(self, lengths: np.ndarray) -> pa.Array:
        """The length prefix of every value: a big-endian int32, or a varint (compact)."""
        n = len(lengths)
        if not self.compact:
            return fixed_width(lengths.astype(">i4"), 4, n)
        lengths = lengths.astype(np.uint64)
        used = np.ones(n, dtype=np.int64)  # bytes of each varint
        for bits in (7, 14, 21, 28):
            used += lengths >= (1 << bits)
        slots = np.arange(5)
        groups = ((lengths[:, None] >> (slots.astype(np.uint64) * 7)) & 0x7F).astype(np.uint8)
        groups[slots < (used - 1)[:, None]] |= 0x80  # more bytes follow
        data = groups[slots < used[:, None]]  # row by row, the bytes in use
        offsets = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(used, out=offsets[1:])
        return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets),
                                                      pa.py_buffer(data.tobytes())])

    def _field(self, kind: int, fid: int, last: int) -> bytes:
        """A field header (``kind``: the binary protocol's type id; ``last``: the id of the
        struct's previous field, the compact protocol writes the difference)."""
        if self.compact:
            return bytes([((fid - last) << 4) | _COMPACT[kind]])
        return struct.pack(">bh", kind, fid)

    def _bool(self, fid: int, value: bool, last: int) -> bytes:
        if self.compact:  # the value is the field header's type
            return bytes([((fid - last) << 4) | (1 if value else 2)])
        return struct.pack(">bh?", _BOOL, fid, value)

    def _list(self, kind: int, n: int) -> bytes:
        if not self.compact:
            return struct.pack(">bi", kind, n)
        if n < 15:
            return bytes([(n << 4) | _COMPACT[kind]])
        return bytes([0xF0 | _COMPACT[kind]]) + self._varint(n)

    # -- mutations, rows and calls --------------------------------------------------------------
    def cells(self, column: bytes, values: pa.Array) -> pa.Array:
        """Every row's ``Mutation`` of ``column``: a put of its value, a delete of the column
        where the value is null (so no older value stays visible)."""
        head = (self._bool(1, False, 0) + self._field(_STRING, 2, 1) + self._text(column)
                + self._field(_STRING, 3, 2))
        lengths = pc.fill_null(pc.binary_length(values), 0).to_numpy(zero_copy_only=False)
        puts = pc.binary_join_element_wise(head, self._lengths(lengths), values,
                                           self._bool(4, True, 3) + _STOP, b"")
        if values.null_count:
            puts = pc.if_else(values.is_valid(), puts, self.delete(column))
        return puts

    def put(self, column: bytes, value: bytes) -> bytes:
        """A ``Mutation`` putting ``value`` into ``column``."""
        return (self._bool(1, False, 0) + self._field(_STRING, 2, 1) + self._text(column)
                + self._field(_STRING, 3, 2) + self._text(value) + self._bool(4, True, 3)
                + _STOP)

    def delete(self, column: bytes) -> bytes:
        """A ``Mutation`` deleting ``column`` (``cf:q``, or a whole family ``cf``)."""
        return (self._bool(1, True, 0) + self._field(_STRING, 2, 1) + self._text(column)
                + self._bool(4, True, 2) + _STOP)

    def rows(self, keys: pa.Array, cells: list[pa.Array | bytes]) -> pa.Array:
        """Every row's ``BatchMutation``: its key and its mutations, one binary array per
        column (:meth:`cells`) or one ``bytes`` mutation the same for every row."""
        lengths = pc.binary_length(keys).to_numpy(zero_copy_only=False)
        middle = self._field(_LIST, 2, 1) + self._list(_STRUCT, len(cells))
        return pc.binary_join_element_wise(self._field(_STRING, 1, 0), self._lengths(lengths),
                                           keys, middle, *cells, _STOP, b"")

    def request(self, table: bytes, rows: pa.Array, timestamp: int) -> bytes:
        """The ``mutateRowsTs`` call message of ``rows`` (from :meth:`rows`) at
        ``timestamp``."""
        if self.compact:
            head = b"\x82\x21\x00" + self._text(_METHOD)  # id, version 1 | CALL << 5, seqid 0
            stamp = self._varint((timestamp << 1) ^ (timestamp >> 63))  # zigzag
            no_attributes = b"\x00"
        else:
            head = struct.pack(">I", 0x80010001) + self._text(_METHOD) + struct.pack(">i", 0)
            stamp = struct.pack(">q", timestamp)
            no_attributes = struct.pack(">bbi", _STRING, _STRING, 0)
        offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32)
        first, last = int(offsets[rows.offset]), int(offsets[rows.offset + len(rows)])
        return b"".join((head, self._field(_STRING, 1, 0), self._text(table),
                         self._field(_LIST, 2, 1), self._list(_STRUCT, len(rows)),
                         rows.buffers()[2][first:last].to_pybytes(),
                         self._field(_I64, 3, 2), stamp, self._field(_MAP, 4, 3), no_attributes,
                         _STOP))
