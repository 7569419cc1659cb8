"""Vectorised value generation: a whole batch per numpy/Arrow call, no per-row Python.

Every value is a pure function of (seed, column, row version key), so a restored run produces
exactly the rows the failed run would have produced.
"""
from __future__ import annotations

import json
import random

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from runtime.schema import TableSchema
from runtime.types import DataType, to_arrow
from sources.datagen.tables import ColumnSpec

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
POOL = 1024
_WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike "
          "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee "
          "zulu amber basil cedar dune ember fjord glade harbor isle jade").split()


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a well-spread 64-bit hash of each element (wrapping arithmetic)."""
    x = x.astype(np.uint64, copy=True)
    x ^= x >> np.uint64(30)
    x *= _M1
    x ^= x >> np.uint64(27)
    x *= _M2
    x ^= x >> np.uint64(31)
    return x


def _decimal_array(unscaled: np.ndarray, t: DataType) -> pa.Array:
    """DECIMAL values from non-negative int64 unscaled values, built from raw buffers."""
    at = to_arrow(t)
    words = 2 if t.precision <= 38 else 4
    buf = np.zeros((len(unscaled), words), dtype=np.int64)
    buf[:, 0] = unscaled  # little-endian two's complement; upper words 0 for values >= 0
    return pa.Array.from_buffers(at, len(unscaled), [None, pa.py_buffer(buf.tobytes())])


class ColumnGenerator:
    """Generates one column for a batch of version keys."""

    def __init__(self, spec: ColumnSpec, t: DataType, index: int, seed: int, is_key: bool):
        self.spec, self.type, self.is_key = spec, t, is_key
        self.salt = np.uint64((seed * 0x2545F4914F6CDD1D + (index + 1) * 0x9E3779B1) % 2**64)
        self.arrow_type = to_arrow(t)
        rnd = random.Random(f"{seed}/{spec.name}")
        self.pool: pa.Array | None = None
        if spec.choices:
            self.pool = pa.array(list(spec.choices), type=self.arrow_type)
        elif t.is_string:
            limit = min(t.length or 48, 200)
            if t.kind == "CHAR" and t.length:
                self.pool = pa.array(["".join(rnd.choice("ABCDEFGHJKLMNPQRSTUVWXYZ")
                                              for _ in range(t.length)) for _ in range(POOL)])
            else:
                self.pool = pa.array([self._text(rnd, limit) for _ in range(POOL)])
        elif t.is_binary:
            n = t.length or 16
            # keep a trailing zero byte in some values: it is part of the value
            self.pool = pa.array([rnd.randbytes(n - 1) + b"\x00" * (i % 2) for i in range(POOL)],
                                 type=pa.binary())
        elif t.kind == "JSON":
            self.pool = pa.array([json.dumps({"color": rnd.choice(_WORDS), "size": rnd.randint(1, 50),
                                              "tags": rnd.sample(_WORDS, 2), "gift": rnd.random() < 0.2})
                                  for _ in range(POOL)])
        elif t.kind == "ARRAY":
            self.pool = pa.array([rnd.sample(_WORDS, rnd.randint(0, 3)) for _ in range(POOL)],
                                 type=self.arrow_type)

    @staticmethod
    def _text(rnd: random.Random, limit: int) -> str:
        words, size = [], 0
        target = rnd.randint(max(1, limit // 8), limit)
        while True:
            w = rnd.choice(_WORDS)
            if size + len(w) + (1 if words else 0) > target:
                break
            words.append(w)
            size += len(w) + (1 if len(words) > 1 else 0)
        return " ".join(words) or rnd.choice(_WORDS)[:limit]

    def generate(self, keys: np.ndarray, ids: np.ndarray, ts_ms: np.ndarray) -> pa.Array:
        t, k = self.type, self.type.kind
        if self.is_key:
            if t.is_integer or k == "DECIMAL":
                return pa.array(ids, type=pa.int64()).cast(self.arrow_type)
            if t.is_string:
                return pa.array(ids, type=pa.int64()).cast(pa.string())
        if self.spec.event_time and k in ("TIMESTAMP", "TIMESTAMP_LTZ"):
            return pa.array(ts_ms, type=pa.int64()).cast(pa.timestamp("ms")).cast(self.arrow_type)
        h = mix64(keys ^ self.salt)
        if self.pool is not None:
            return self.pool.take(pa.array(h % np.uint64(len(self.pool)), type=pa.uint64()))
        if k == "BOOLEAN":
            return pa.array((h & np.uint64(1)).astype(bool))
        if t.is_integer:
            span = {"TINYINT": 100, "SMALLINT": 10_000, "INT": 1_000_000, "BIGINT": 10**12}[k]
            return pa.array((h % np.uint64(span)).astype(np.int64)).cast(self.arrow_type)
        if k == "DECIMAL":
            digits = min(t.precision, 15)
            return _decimal_array((h % np.uint64(10**digits)).astype(np.int64), t)
        if k in ("FLOAT", "DOUBLE"):
            v = (h >> np.uint64(11)).astype(np.float64) / float(2**53) * 1000.0
            return pa.array(v).cast(self.arrow_type)
        if k == "DATE":
            return pa.array((h % np.uint64(3650)).astype(np.int32) + 18262, type=pa.int32()).cast(pa.date32())
        if k == "TIME":
            us = (h % np.uint64(86_400_000_000)).astype(np.int64)
            return pa.array(us, type=pa.int64()).cast(pa.duration("us")).cast(self.arrow_type)
        if k in ("TIMESTAMP", "TIMESTAMP_LTZ"):
            us = ts_ms.astype(np.int64) * 1000 - (h % np.uint64(365 * 86_400_000_000)).astype(np.int64)
            return pa.array(us, type=pa.int64()).cast(pa.timestamp("us")).cast(self.arrow_type)
        raise ValueError(f"datagen can't generate {t}")


class RowGenerator:
    """Generates row images of one table as Arrow record batches."""

    def __init__(self, schema: TableSchema, specs: tuple[ColumnSpec, ...], seed: int):
        first_key = schema.primary_key[0] if schema.primary_key else None
        self.schema = schema
        self.columns = [ColumnGenerator(spec, col.type, i, seed, col.name == first_key)
                        for i, (spec, col) in enumerate(zip(specs, schema.columns))]
        self.key_positions = set(schema.key_indexes)

    def generate(self, ids: np.ndarray, versions: np.ndarray, ts_ms: np.ndarray,
                 deleted: np.ndarray | None) -> pa.RecordBatch:
        """Rows with primary key ``ids``; ``versions`` (0 for the insert, else the event number
        of the update) make updated rows differ; ``deleted`` rows carry only their key."""
        keys = ids.astype(np.uint64) * _GOLDEN + versions.astype(np.uint64)
        arrays = []
        mask = pa.array(deleted) if deleted is not None and deleted.any() else None
        for i, gen in enumerate(self.columns):
            arr = gen.generate(keys, ids, ts_ms)
            if mask is not None and i not in self.key_positions:
                arr = pc.if_else(mask, pa.scalar(None, type=arr.type), arr)
            arrays.append(arr)
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema.arrow_schema)
