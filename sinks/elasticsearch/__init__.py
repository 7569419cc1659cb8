"""The Elasticsearch / OpenSearch sink: change events as documents, exactly once.

A table's rows become documents of one index (``index`` template), ``_id`` from the primary
key, written with external versions taken from the change events (``ChangeBatch.versions``).
Elasticsearch has no transactions, so at a checkpoint barrier the writer puts its batches into
a write-ahead-log segment in checkpoint storage; the committer applies the segment once the
checkpoint is durable and deletes it.  Versioned writes make every replay a no-op.
"""
