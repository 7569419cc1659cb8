"""The Elasticsearch / OpenSearch sink: change events as documents, exactly once.

A table's rows become documents of one index (``index`` template), ``_id`` from the primary
key, written with external versions taken from the change events (``ChangeBatch.versions``).
Elasticsearch has no transactions, so at a checkpoint barrier the writer puts its batches into
a write-ahead-log segment in checkpoint storage; the committer applies the segment once the
checkpoint is durable and deletes it.  Versioned writes make every replay a no-op.

Never silent: a write refused with 409 is counted per table (a replay of the version the
document has apart from a version below it: a lost change), logged and reported as the
committer's gauges; a key whose versions go backwards within one writer's changes stops the
pipeline with one line.  Index names: see ``index`` and
:meth:`~sinks.elasticsearch.config.ElasticsearchSinkConfig.index_for` (two tables never
share an index by accident).
"""
