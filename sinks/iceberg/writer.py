"""What the Iceberg writers stage as data files (see :mod:`sinks.lake.staging`)."""
from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from runtime.schema import TableSchema
from sinks.iceberg.config import IcebergSinkConfig
from sinks.lake.partition import fields_for
from sinks.lake.staging import Layout

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Target:
    """An Iceberg table as a writer stages files for it."""

    schema: Any          # the table's pyiceberg Schema
    arrow: pa.Schema     # its Arrow schema with Parquet field ids
    location: str        # local folder of its data files


def local_path(location: str) -> str | None:
    """A ``file://`` or plain location as a local path; None for another store."""
    if location.startswith("file://"):
        return location[len("file://"):]
    return None if "://" in location else location


class IcebergLayout(Layout):
    """Snapshot reads and inserts of an unpartitioned table with a primary key (upsert mode)
    in a local warehouse are staged as Parquet files in the table's ``data`` folder, in the
    table's Arrow types with its field ids; the table is created (empty) by the writer that
    first stages rows of it, when it does not exist yet, as the committer would create it.
    A table whose columns differ from the rows' (an evolution the committer applies first)
    keeps the write-ahead-log path, as do partitioned tables, append mode and object
    stores.  Holds a catalog client per writer (not carried: made again where used)."""

    def __init__(self, config: IcebergSinkConfig):
        self.config = config
        self._catalog: Any = None
        self._targets: dict[tuple[str, int], _Target | None] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"config": self.config, "_catalog": None, "_targets": {}}

    def stageable(self, schema: TableSchema) -> bool:
        if self.config.write_mode != "upsert" or not schema.primary_key:
            return False
        if fields_for(self.config.partition_fields, schema):
            return False
        if local_path(self.config.warehouse_url()) is None:
            return False
        return self._target(schema) is not None

    def _target(self, schema: TableSchema) -> _Target | None:
        key = (schema.table, hash(schema))
        if key not in self._targets:
            self._targets[key] = self._load(schema)
        return self._targets[key]

    def _load(self, schema: TableSchema) -> _Target | None:
        from pyiceberg.exceptions import NoSuchTableError, TableAlreadyExistsError
        from pyiceberg.io.pyarrow import schema_to_pyarrow

        from sinks.iceberg import catalog as catalogs
        from sinks.iceberg.catalog import translate
        from sinks.iceberg.tables import new_table_schema, same_type

        if self._catalog is None:
            self._catalog = catalogs.load(self.config)
        ident = self.config.identifier(schema.table)
        want = new_table_schema(schema, schema.arrow_schema, keyed=True)
        with translate(f"table {'.'.join(ident)}"), catalogs.SETUP:
            try:
                table = self._catalog.load_table(ident)
            except NoSuchTableError:
                from sinks.iceberg.committer import create_table
                try:
                    table = create_table(self._catalog, self.config, ident, schema,
                                         schema.arrow_schema, keyed=True)
                except TableAlreadyExistsError:  # another writer was first
                    table = self._catalog.load_table(ident)
        have = table.schema()
        if table.spec().fields or [f.name for f in have.fields] != [f.name for f in want.fields] \
                or not all(same_type(a.field_type, b.field_type) and a.required == b.required
                           for a, b in zip(have.fields, want.fields)):
            log.info("iceberg: table %s: its columns are not the rows' yet: staged in the "
                     "write-ahead log", schema.table)
            return None
        folder = local_path(table.location())
        if folder is None:
            return None
        return _Target(have, schema_to_pyarrow(have), folder.rstrip("/") + "/data")

    def location(self, schema: TableSchema) -> str:
        target = self._target(schema)
        assert target is not None, "only stageable tables have staged files"
        return target.location

    def shape(self, rows: pa.Table, schema: TableSchema) -> pa.Table:
        from sinks.iceberg.types import to_iceberg_arrow

        target = self._target(schema)
        assert target is not None, "only stageable tables have staged files"
        return to_iceberg_arrow(rows, target.schema, schema.table).cast(target.arrow)

    def file_name(self) -> str:
        return f"00000-0-{uuid.uuid4()}.parquet"
