"""What the lake-table sinks (Delta, Iceberg) share.

Exactly once, as DESIGN.md's lake-table sinks: writers stage each checkpoint's changes in
write-ahead-log segments in the pipeline's state folder (:mod:`sinks.lake.writer`), and the
snapshot reads and inserts of tables the format can take them for as the table's own data
files (:mod:`sinks.lake.staging`: the committer adds those as they are when their keys
collide with nothing, Flink's Iceberg writer model); once the
checkpoint is durable the committer (:mod:`sinks.lake.committer`) scans them into one
:class:`~sinks.lake.changes.TableChanges` per table (collapsed to the last change of each key
in upsert mode; the rows stay in the segments and are streamed from there as the format takes
them) and the format commits one table transaction per table and checkpoint, tagged
with an application id (pipeline, sink, job) and the checkpoint id, so a replay after a crash
never applies a checkpoint twice.  Options shared by the formats: :mod:`sinks.lake.config`;
``partition-by``: :mod:`sinks.lake.partition`.
"""
