"""Binlog offsets: a position in the binlog, ordered, at a transaction boundary.

An offset holds the binlog file and position (ordered: ``is_before``), the GTID state reached
there (MySQL ``uuid:1-5`` sets or MariaDB ``domain-server-seq`` lists; the primary way to
reconnect) and ``skip_rows``: row changes of the transaction starting here that were already
emitted (a huge transaction is emitted in several batches; restoring skips what was emitted).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, replace
from typing import Any


def file_number(file: str) -> int:
    """``mysql-bin.000123`` -> 123."""
    return int(file.rpartition(".")[2] or 0)


#: Versions are (file number << 40) | byte position: increasing along the binlog.
POS_BITS = 40


def version_of(file: str, pos: int) -> int:
    return (file_number(file) << POS_BITS) | pos


@dataclass(frozen=True)
class BinlogOffset:
    file: str
    pos: int
    gtid: str = ""
    skip_rows: int = 0

    @property
    def key(self) -> tuple[int, int]:
        return (file_number(self.file), self.pos)

    def is_before(self, other: BinlogOffset) -> bool:
        return self.key < other.key

    @property
    def version(self) -> int:
        return version_of(self.file, self.pos)

    def with_skip(self, skip_rows: int) -> BinlogOffset:
        return replace(self, skip_rows=skip_rows)

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "pos": self.pos, "gtid": self.gtid, "skip_rows": self.skip_rows}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BinlogOffset:
        return cls(d["file"], int(d["pos"]), d.get("gtid", ""), int(d.get("skip_rows", 0)))

    def __str__(self) -> str:
        g = f" gtid {self.gtid}" if self.gtid else ""
        k = f" +{self.skip_rows} rows" if self.skip_rows else ""
        return f"{self.file}:{self.pos}{k}{g}"


class MariaDbGtidState:
    """MariaDB's GTID position: the last ``domain-server-seq`` per replication domain."""

    def __init__(self, text: str = ""):
        self.domains: dict[int, str] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            self.domains[int(part.split("-")[0])] = part

    def add(self, domain: int, server: int, seq: int) -> None:
        self.domains[domain] = f"{domain}-{server}-{seq}"

    def __str__(self) -> str:
        return ",".join(self.domains[d] for d in sorted(self.domains))


class MySqlGtidSet:
    """MySQL's executed GTID set, ``uuid:1-5:7,uuid2:1-3``: per server uuid, sorted disjoint
    closed intervals of transaction numbers.  Adding the next GTID is O(1) in the usual case
    (it extends the last interval)."""

    def __init__(self, text: str = ""):
        self.sets: dict[str, list[list[int]]] = {}
        for part in filter(None, (p.strip() for p in text.replace("\n", "").split(","))):
            uuid, *ranges = [x.strip() for x in part.split(":")]
            uuid = uuid.lower()
            if len(uuid.replace("-", "")) != 32:
                raise ValueError(f"bad GTID set {text!r}: {uuid!r} is not a server uuid")
            for r in ranges:
                a, _, b = r.partition("-")
                if not a.isdigit() or (b and not b.isdigit()):
                    raise ValueError(f"bad GTID set {text!r}: {r!r} is not an interval (tagged "
                                     "GTIDs of MySQL 8.3+ are not supported)")
                self._add_interval(uuid, int(a), int(b or a))

    def _add_interval(self, uuid: str, a: int, b: int) -> None:
        ivs = self.sets.setdefault(uuid, [])
        if ivs and ivs[-1][0] <= a <= ivs[-1][1] + 1:
            ivs[-1][1] = max(ivs[-1][1], b)
            return
        ivs.append([a, b])
        ivs.sort()
        merged: list[list[int]] = []
        for x, y in ivs:
            if merged and x <= merged[-1][1] + 1:
                merged[-1][1] = max(merged[-1][1], y)
            else:
                merged.append([x, y])
        self.sets[uuid] = merged

    def add(self, uuid: str, gno: int) -> None:
        self._add_interval(uuid.lower(), gno, gno)

    def __contains__(self, gtid: tuple[str, int]) -> bool:
        uuid, gno = gtid
        return any(a <= gno <= b for a, b in self.sets.get(uuid.lower(), ()))

    def issubset(self, other: MySqlGtidSet) -> bool:
        for uuid, ivs in self.sets.items():
            theirs = other.sets.get(uuid, [])
            for a, b in ivs:
                if not any(x <= a and b <= y for x, y in theirs):
                    return False
        return True

    def union(self, other: MySqlGtidSet) -> MySqlGtidSet:
        out = MySqlGtidSet(str(self))
        for uuid, ivs in other.sets.items():
            for a, b in ivs:
                out._add_interval(uuid, a, b)
        return out

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MySqlGtidSet) and str(self) == str(other)

    def encode(self) -> bytes:
        """The binary form of COM_BINLOG_DUMP_GTID: the number of uuids, then per uuid its 16
        bytes, the number of intervals and each interval as [start, end) (64-bit LE)."""
        items = [(u, ivs) for u, ivs in sorted(self.sets.items()) if ivs]
        out = bytearray(struct.pack("<Q", len(items)))
        for uuid, ivs in items:
            out += bytes.fromhex(uuid.replace("-", ""))
            out += struct.pack("<Q", len(ivs))
            for a, b in ivs:
                out += struct.pack("<QQ", a, b + 1)
        return bytes(out)

    def __str__(self) -> str:
        return ",".join(uuid + "".join(f":{a}" if a == b else f":{a}-{b}" for a, b in ivs)
                        for uuid, ivs in sorted(self.sets.items()) if ivs)
