"""What the Delta writers stage as data files (see :mod:`sinks.lake.staging`)."""
from __future__ import annotations

import pyarrow as pa

from runtime.fs import is_url
from runtime.schema import TableSchema
from sinks.delta.config import DeltaSinkConfig
from sinks.delta.types import to_delta
from sinks.lake.partition import fields_for
from sinks.lake.staging import Layout


class DeltaLayout(Layout):
    """Snapshot reads and inserts of an unpartitioned table with a primary key (upsert mode)
    on a local path are staged as Parquet files in the table's folder, in Delta's types and
    file naming; partitioned tables, append mode and object stores keep the write-ahead-log
    path."""

    def __init__(self, config: DeltaSinkConfig):
        self.config = config

    def stageable(self, schema: TableSchema) -> bool:
        if self.config.write_mode != "upsert" or not schema.primary_key:
            return False
        if fields_for(self.config.partition_fields, schema):
            return False
        try:
            return not is_url(self.config.table_uri(schema.table))
        except ValueError:  # no table path: the committer says so, in one line
            return False

    def merges_mixed(self) -> bool:
        # new-keys-append-threshold 0: one commit per table and checkpoint, a MERGE when the
        # checkpoint has changes besides the staged inserts
        return not self.config.new_keys_append_threshold

    def location(self, schema: TableSchema) -> str:
        return self.config.table_uri(schema.table)

    def shape(self, rows: pa.Table, schema: TableSchema) -> pa.Table:
        return to_delta(rows, schema.table)
