"""Geometry values: WKB, with the SRID as PostGIS's EWKB when it is not 0.

A GEOMETRY column's logical value is BYTES (:mod:`formats.mysqltypes`).  MySQL stores a
geometry as a little-endian 4-byte SRID followed by WKB; the hub's value is that WKB when the
SRID is 0 (MySQL's default, a plane without a reference system), and EWKB otherwise: the
WKB with the SRID flag (``0x20000000``) set in its type word and the SRID after it, which
PostGIS reads as it is (``ST_GeomFromEWKB``, a ``bytea`` cast) and which keeps the SRID on
the way to every sink instead of dropping it.

Debezium writes the same value as ``{"wkb": <WKB>, "srid": <SRID or null>}`` (null for SRID 0:
``BinlogGeometry.fromBytes``); :func:`split_ewkb` and :func:`join_ewkb` go between the two.
"""
from __future__ import annotations

import struct

_SRID_FLAG = 0x20000000


def from_mysql(value: bytes) -> bytes:
    """MySQL's internal geometry value (SRID, then WKB) as the hub's value."""
    srid = int.from_bytes(value[:4], "little")
    return join_ewkb(value[4:], srid or None)


def split_ewkb(value: bytes) -> tuple[bytes, int | None]:
    """``(WKB, SRID)`` of a hub geometry value (SRID None when the value carries none).
    Raises ValueError when ``value`` is not WKB."""
    if len(value) < 5 or value[0] not in (0, 1):
        raise ValueError(f"{value[:9].hex()!r} is not WKB (byte order 0 or 1 expected)")
    order = "<" if value[0] == 1 else ">"
    (kind,) = struct.unpack_from(order + "I", value, 1)
    if not kind & _SRID_FLAG:
        return value, None
    if len(value) < 9:
        raise ValueError(f"{value.hex()!r}: EWKB without its SRID")
    (srid,) = struct.unpack_from(order + "I", value, 5)
    return value[:1] + struct.pack(order + "I", kind & ~_SRID_FLAG) + value[9:], srid


def join_ewkb(wkb: bytes, srid: int | None) -> bytes:
    """The hub's value of ``wkb`` with ``srid`` (plain WKB for None or 0).  Raises ValueError
    when ``wkb`` is not WKB or already carries an SRID."""
    if not srid:
        return wkb
    if len(wkb) < 5 or wkb[0] not in (0, 1):
        raise ValueError(f"{wkb[:9].hex()!r} is not WKB (byte order 0 or 1 expected)")
    order = "<" if wkb[0] == 1 else ">"
    (kind,) = struct.unpack_from(order + "I", wkb, 1)
    if kind & _SRID_FLAG:
        raise ValueError("the WKB already carries an SRID")
    return wkb[:1] + struct.pack(order + "II", kind | _SRID_FLAG, srid) + wkb[5:]


def point_xy(wkb: bytes) -> tuple[float, float]:
    """x and y of a 2D WKB point (Debezium's Point struct carries them).  Raises ValueError
    for anything else."""
    if len(wkb) != 21 or wkb[0] not in (0, 1):
        raise ValueError(f"{wkb[:9].hex()!r} is not the WKB of a 2D point")
    order = "<" if wkb[0] == 1 else ">"
    kind, x, y = struct.unpack_from(order + "Idd", wkb, 1)
    if kind != 1:
        raise ValueError(f"WKB type {kind} is not a point")
    return x, y
