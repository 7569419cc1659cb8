"""The HBase sink: change events as rows of HBase tables over Thrift (happybase), exactly once.

Rowkeys come from the primary key (an order-preserving binary encoding), columns go to column
families, and deletes are HBase deletes.  HBase has no transactions, so the writer puts its
batches into a write-ahead-log segment at the barrier and the committer applies the segments
once the checkpoint is durable (several at once, each streamed run by run:
``apply-threads``): of each rowkey only its last change (by version; a rowkey in several
segments is settled by version first), at cell timestamps above those of every earlier
commit, so replays and the order of writers never change the final rows (see
:mod:`sinks.hbase.committer`).  A rowkey whose versions go backwards within one run of a
writer's changes stops the pipeline with one line (its later change would lose).  Table names: see ``table`` and
:meth:`~sinks.hbase.config.HBaseSinkConfig.table_for` (two tables never share one by
accident).
"""
