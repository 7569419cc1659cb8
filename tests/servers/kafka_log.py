"""A partition's log as the broker stores it, read with a raw Fetch request (v4,
read_uncommitted): every record with its producer id and whether its transaction committed,
told by the control records (COMMIT/ABORT markers) that follow it in the log.

The exactly-once tests compare a sink's output both as a read_committed consumer sees it and
as this reads it from the log (librdkafka hides both the markers and the producer ids): two
views that must agree, the second independent of the consumer's isolation.  Uncompressed
record batches only (the sink's default).
"""
from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from io import BytesIO

_FETCH, _FETCH_VERSION = 1, 4
_TRANSACTIONAL, _CONTROL = 0x10, 0x20


@dataclass(frozen=True)
class LogRecord:
    offset: int
    producer_id: int
    transactional: bool
    key: bytes | None
    value: bytes | None


def read_log(bootstrap: str, topic: str, partition: int
             ) -> tuple[list[LogRecord], list[LogRecord]]:
    """The records of ``partition`` a read_committed consumer must see, in log order
    (non-transactional ones and those whose transaction has a COMMIT marker); and those of
    transactions still open (no marker yet), which Kafka holds back."""
    out: list[LogRecord] = []
    open_txn: dict[int, list[LogRecord]] = {}  # producer id -> records awaiting a marker
    for batch_pid, control, records in _batches(bootstrap, topic, partition):
        if control:
            kept = open_txn.pop(batch_pid, [])
            if records and records[0] == "commit":
                out.extend(kept)
            continue
        for r in records:
            (open_txn.setdefault(r.producer_id, []) if r.transactional else out).append(r)
    return sorted(out, key=lambda r: r.offset), [r for rs in open_txn.values() for r in rs]


def _batches(bootstrap: str, topic: str, partition: int):
    offset = 0
    while True:
        data = _fetch(bootstrap, topic, partition, offset)
        if not data:
            return
        buf = BytesIO(data)
        progressed = False
        while True:
            head = buf.read(12)
            if len(head) < 12:
                break
            base, length = struct.unpack(">qi", head)
            body = buf.read(length)
            if len(body) < length:
                break  # a partial batch at the end of the response
            yield _batch(base, body)
            offset = base + struct.unpack_from(">i", body, 11)[0] + 1
            progressed = True
        if not progressed:
            return


def _batch(base: int, body: bytes):
    # partitionLeaderEpoch int32, magic int8, crc uint32, attributes int16, lastOffsetDelta
    # int32, first/max timestamp int64, producerId int64, epoch int16, sequence int32, count
    attrs = struct.unpack_from(">h", body, 9)[0]
    pid = struct.unpack_from(">q", body, 31)[0]
    count = struct.unpack_from(">i", body, 45)[0]
    if attrs & 0x07:
        # the sinks under test write uncompressed batches (their default): a compressed one
        # means a test set compression.type, which this reader does not decode
        raise ValueError(f"record batch compressed (codec {attrs & 0x07}): the log reader "
                         "reads uncompressed batches only")
    buf = BytesIO(body[49:])
    records = []
    for _ in range(count):
        _varint(buf)  # length
        buf.read(1)  # attributes
        _varint(buf)  # timestamp delta
        delta = _varint(buf)
        key = _bytes(buf)
        value = _bytes(buf)
        for _h in range(_varint(buf)):
            _bytes(buf)
            _bytes(buf)
        if attrs & _CONTROL:
            # control record key: version int16, type int16 (0 abort, 1 commit)
            records.append("commit" if struct.unpack_from(">h", key, 2)[0] == 1 else "abort")
        else:
            records.append(LogRecord(base + delta, pid, bool(attrs & _TRANSACTIONAL), key,
                                     value))
    return pid, bool(attrs & _CONTROL), records


def _varint(buf: BytesIO) -> int:
    shift = result = 0
    while True:
        b = buf.read(1)[0]
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return (result >> 1) ^ -(result & 1)  # zigzag
        shift += 7


def _bytes(buf: BytesIO) -> bytes | None:
    n = _varint(buf)
    return None if n < 0 else buf.read(n)


def _string(s: str) -> bytes:
    raw = s.encode()
    return struct.pack(">h", len(raw)) + raw


def _fetch(bootstrap: str, topic: str, partition: int, offset: int) -> bytes:
    """The record bytes of one Fetch from ``offset`` (asked of the bootstrap broker: the
    test brokers have one)."""
    body = (struct.pack(">iiiib", -1, 100, 1, 32 << 20, 0)  # read_uncommitted
            + struct.pack(">i", 1) + _string(topic)
            + struct.pack(">i", 1) + struct.pack(">iqi", partition, offset, 32 << 20))
    req = struct.pack(">hhi", _FETCH, _FETCH_VERSION, 1) + _string("hub-tests") + body
    host, port = bootstrap.split(",")[0].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=30) as s:
        s.sendall(struct.pack(">i", len(req)) + req)
        n = struct.unpack(">i", _read(s, 4))[0]
        resp = BytesIO(_read(s, n))
    resp.read(4 + 4)  # correlation id, throttle time
    assert struct.unpack(">i", resp.read(4))[0] == 1  # topics
    resp.read(struct.unpack(">h", resp.read(2))[0])
    assert struct.unpack(">i", resp.read(4))[0] == 1  # partitions
    _part, error = struct.unpack(">ih", resp.read(6))
    if error:
        raise RuntimeError(f"fetch {topic}/{partition} at {offset}: error code {error}")
    resp.read(16)  # high watermark, last stable offset
    n_aborted = struct.unpack(">i", resp.read(4))[0]
    resp.read(max(n_aborted, 0) * 16)
    size = struct.unpack(">i", resp.read(4))[0]
    return resp.read(size) if size > 0 else b""


def _read(s: socket.socket, n: int) -> bytes:
    out = bytearray()
    while len(out) < n:
        chunk = s.recv(n - len(out))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        out += chunk
    return bytes(out)
