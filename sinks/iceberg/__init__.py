"""The Iceberg sink (``type = "iceberg"``, extra ``iceberg``): one Apache Iceberg table per
source table through pyiceberg, in a sql (SQLite by default, PostgreSQL), rest or hive catalog.

Writers stage snapshot reads and inserts of unpartitioned keyed tables as the table's Parquet
data files (:mod:`sinks.iceberg.writer`) and every other change in write-ahead-log segments;
after each durable checkpoint the committer commits one Iceberg transaction per table, adding
the staged files as they are when their keys collide with nothing (:mod:`sinks.iceberg.committer`): copy-on-write
upserts and deletes by primary key (:mod:`sinks.iceberg.merge`), or changelog rows; tagged with
the pipeline and checkpoint in the snapshot summary, so a replay never applies a checkpoint
twice.  Types: :mod:`sinks.iceberg.types`; schema evolution and partition specs:
:mod:`sinks.iceberg.tables`; compaction and snapshot expiry: :mod:`sinks.iceberg.maintenance`.
"""
