"""Metadata columns a transform may read (Flink CDC's names, plus the hub's own).

They exist only when an expression names them; each is computed once per batch, vectorised.

==========================  ================  ===============================================
``__database_name__``       STRING            the table's database (``db`` of ``db.table``)
``__namespace_name__``,     STRING            the same (Flink CDC's names for it; MySQL has
``__schema_name__``                           one level above tables)
``__table_name__``          STRING            the table's name
``__data_event_type__``     STRING            ``+I`` (snapshot read, insert), ``+U`` (update),
                                              ``-D`` (delete), as Flink CDC writes them
``__op_ts__``               TIMESTAMP_LTZ(3)  the change's commit time in the source (``ts_ms``)
``__source_position__``     STRING            the source position (binlog file/pos or GTID,
                                              Kafka partition/offset, file/offset) as text;
                                              NULL where the source gives none
==========================  ================  ===============================================
"""
from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pyarrow as pa

from runtime.batch import ChangeBatch
from runtime.schema import split_table_id

METADATA_COLUMNS = ("__database_name__", "__namespace_name__", "__schema_name__",
                    "__table_name__", "__data_event_type__", "__op_ts__", "__source_position__")

_EVENT_TYPES = pa.array(["+I", "+U", "-D"])
_OP_INDEX = np.zeros(256, dtype=np.int32)
_OP_INDEX[ord("u")] = 1
_OP_INDEX[ord("d")] = 2


def metadata_columns(table: str, n: int, batch: ChangeBatch | None = None,
                     ops: str | None = None) -> dict[str, Callable[[], pa.Array]]:
    """Lazy makers of the metadata columns of ``n`` events of ``table``.  ``batch`` gives the
    event time and positions; ``ops`` (default the batch's) the event types."""
    db, name = split_table_id(table)

    def const(v: str) -> Callable[[], pa.Array]:
        return lambda: pa.repeat(pa.scalar(v), n)

    def event_type() -> pa.Array:
        codes = np.frombuffer((ops if ops is not None else batch.ops if batch else "")
                              .encode("ascii"), dtype=np.uint8)
        return _EVENT_TYPES.take(pa.array(_OP_INDEX[codes])) if n else pa.array([], pa.string())

    def op_ts() -> pa.Array:
        if batch is None or not n:
            return pa.array([], pa.timestamp("ms", tz="UTC"))
        return batch.ts_ms_array().cast(pa.int64()).cast(pa.timestamp("ms", tz="UTC"))

    def position() -> pa.Array:
        # positions are per-event Python values already; made text only when asked for
        if batch is None or batch.positions is None:
            return pa.nulls(n, pa.string())
        return pa.array([None if p is None else p if isinstance(p, str) else
                         json.dumps(p, sort_keys=True, default=str) for p in batch.positions],
                        pa.string())

    return {"__database_name__": const(db), "__namespace_name__": const(db),
            "__schema_name__": const(db), "__table_name__": const(name),
            "__data_event_type__": event_type, "__op_ts__": op_ts,
            "__source_position__": position}
