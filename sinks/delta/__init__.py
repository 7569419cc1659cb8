"""The Delta Lake sink: one Delta table per source table, exactly once (``deltalake``).

Writers stage each checkpoint's changes in write-ahead-log segments, and the snapshot reads
and inserts of unpartitioned keyed tables as the table's data files (:mod:`sinks.delta.writer`;
nothing is visible before the checkpoint completes); the committer adds the staged files as
they are when their keys collide with nothing, and commits one Delta transaction per table and
checkpoint, carrying the application transaction ``(hub:<pipeline>:delta:<job>, checkpoint
id)``, so a replay after a crash never applies a checkpoint twice
(:mod:`sinks.delta.committer`).  A table with a primary key holds the source table's current
state (one MERGE per checkpoint); one without a key, or with ``write-mode = "append"``, gets
change rows with ``op``, ``ts_ms`` and ``seq``.  While running, maintenance compacts small
files, deletes unreferenced ones and checkpoints the log.

Modules: :mod:`~sinks.delta.config` (options, table paths), :mod:`~sinks.delta.types` (the
type map), :mod:`~sinks.delta.partition` (``partition-by`` as derived columns),
:mod:`~sinks.delta.evolution` (schema changes), :mod:`~sinks.delta.writer` (what writers
stage as data files), :mod:`~sinks.delta.table` (the only caller of
deltalake, and its error translation), :mod:`~sinks.delta.committer`, :mod:`~sinks.delta.sink`.

Read a table with Polars (``pl.scan_delta(path)``), deltalake (``DeltaTable(path)``), Spark
or any Delta reader supporting the ``timestampNtz`` feature (readers >= 3, writers 7) when a
table has TIMESTAMP columns.
"""
