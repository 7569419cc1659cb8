"""The HBase sink: change events as rows of HBase tables over Thrift (happybase), exactly once.

Rowkeys come from the primary key (an order-preserving binary encoding), columns go to column
families, every cell of a checkpoint's changes carries one timestamp derived from the change
versions, and deletes are HBase deletes at that timestamp.  HBase has no transactions, so the
writer puts its batches into a write-ahead-log segment at the barrier and the committer applies
the segment once the checkpoint is durable; versioned cells make every replay a no-op.
"""
