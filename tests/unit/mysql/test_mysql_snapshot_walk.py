"""The snapshot's vectorised walk over result-set packets (:func:`sources.mysql.snapshot._walk`)
against a plain one-packet-at-a-time walk, on packet streams built here: rows of every size
(zero bytes in the data, 64 KiB and larger rows, 0xFE-led rows), the stream cut anywhere
(a socket read ends mid-packet), and the EOF / ERR packets that end a result."""
from __future__ import annotations

import random

import numpy as np
import pytest

from runtime.errors import TerminalError
from sources.mysql.snapshot import _columns, _walk

EOF = b"\xfe\x00\x00\x02\x00"


def packet(payload: bytes, seq: int) -> bytes:
    n = len(payload)
    return bytes([n & 0xFF, n >> 8 & 0xFF, n >> 16, seq & 0xFF]) + payload


def lenenc(value: bytes | None) -> bytes:
    if value is None:
        return b"\xfb"
    n = len(value)
    if n < 0xFB:
        head = bytes([n])
    elif n < 1 << 16:
        head = b"\xfc" + n.to_bytes(2, "little")
    elif n < 1 << 24:
        head = b"\xfd" + n.to_bytes(3, "little")
    else:
        head = b"\xfe" + n.to_bytes(8, "little")
    return head + value


def stream(rows: list[list[bytes | None]], end: bytes = EOF) -> tuple[bytes, list[int]]:
    out, starts = bytearray(), []
    for i, row in enumerate(rows):
        starts.append(len(out) + 4)
        out += packet(b"".join(lenenc(v) for v in row), 2 + i)
    out += packet(end, 2 + len(rows))
    return bytes(out), starts


def walk_all(data: bytes, cuts: list[int]) -> tuple[list[int], int, bool]:
    """Walk ``data`` as it arrives in pieces ending at ``cuts`` (then whole)."""
    out: list[np.ndarray] = []
    pos, done = 0, False
    for have in [*cuts, len(data)]:
        pos, done = _walk(np.frombuffer(data, dtype=np.uint8, count=have), pos, out)
        if done:
            break
    got = np.concatenate(out).tolist() if out else []
    return got, pos, done


def random_rows(rng: random.Random, n: int) -> list[list[bytes | None]]:
    def value() -> bytes | None:
        kind = rng.random()
        if kind < 0.1:
            return None
        if kind < 0.2:
            return b""
        if kind < 0.5:
            return bytes(rng.randrange(3))            # zero bytes: false candidates
        if kind < 0.97:
            return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        return b"x" * rng.choice([250, 251, 255, 256, 65_531, 65_536, 70_000])
    return [[value() for _ in range(3)] for _ in range(n)]


@pytest.mark.parametrize("seed", range(8))
def test_walk_finds_every_row_whatever_the_reads(seed):
    rng = random.Random(seed)
    rows = random_rows(rng, 300)
    data, starts = stream(rows)
    cuts = sorted(rng.sample(range(1, len(data)), 20))
    got, pos, done = walk_all(data, cuts)
    assert done and got == starts and pos == len(data) - 4 - len(EOF)
    # the columns cut from those rows are the values
    cols = _columns(bytearray(data[:pos]), np.asarray(got, dtype=np.int64), 3)
    for c, col in enumerate(cols):
        assert col.to_pylist() == [r[c] for r in rows]


def test_walk_stops_at_an_incomplete_packet_and_goes_on_from_there():
    data, starts = stream([[b"a" * 10]] * 50)
    got, pos, done = walk_all(data, [])
    assert done and got == starts
    out: list[np.ndarray] = []
    cut = starts[20] + 3                     # inside row 20
    pos, done = _walk(np.frombuffer(data, dtype=np.uint8, count=cut), 0, out)
    assert not done and pos == starts[20] - 4 and np.concatenate(out).tolist() == starts[:20]
    pos, done = _walk(np.frombuffer(data, dtype=np.uint8), pos, out)
    assert done and np.concatenate(out).tolist() == starts


def test_walk_steps_rows_led_by_0xfe_and_empty_results():
    # a value with an 8-byte length prefix leads its row with 0xFE (9 bytes or more: not EOF)
    led = packet(b"\xfe" + (3).to_bytes(8, "little") + b"abc", 3)
    head, starts = stream([[b"1"]])
    tail, more = stream([[b"4"], [None]])
    data = head[:starts[-1] + 2] + led + tail
    got, _, done = walk_all(data, [])
    at = starts[-1] + 2
    assert done and got == [*starts, at + 4, *(at + len(led) + s for s in more)]
    data, starts = stream([])
    assert walk_all(data, []) == ([], 0, True)


def test_an_error_packet_ends_the_result_with_its_message():
    err = b"\xff" + (1317).to_bytes(2, "little") + b"#70100Query execution was interrupted"
    data, _ = stream([[b"1"], [b"2"]], end=err)
    with pytest.raises(TerminalError, match="1317.*interrupted"):
        walk_all(data, [])
