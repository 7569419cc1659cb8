"""The HBase sink: change events as rows of HBase tables over Thrift (happybase), exactly once.

Rowkeys come from the primary key (an order-preserving binary encoding), columns go to column
families, and deletes are HBase deletes.  HBase has no transactions, so the writer puts its
batches into a write-ahead-log segment at the barrier and the committer applies the segments
once the checkpoint is durable: of each rowkey only its last change (by version), at cell
timestamps above those of every earlier commit, so replays and the order of writers never
change the final rows (see :mod:`sinks.hbase.committer`).
"""
