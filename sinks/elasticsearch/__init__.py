"""The Elasticsearch / OpenSearch sink: change events as documents, exactly once.

A table's rows become documents of one index (``index`` template), ``_id`` from the primary
key, written with external versions taken from the change events (``ChangeBatch.versions``).
Elasticsearch has no transactions, so at a checkpoint barrier the writer puts its batches into
a write-ahead-log segment in checkpoint storage; the committer applies the segments once the
checkpoint is durable (several at once, each streamed run by run: ``apply-threads``) and
deletes each once applied.  Versioned writes make every replay a no-op and the order of the
segments irrelevant.

Never silent: a write refused with 409 is counted per table (a replay of the version the
document has apart from a version below it: a lost change), logged and reported as the
committer's gauges; a key whose versions go backwards within one writer's changes stops the
pipeline with one line (checked within each run of up to
:data:`~runtime.wal.RUN_ROWS` rows; across runs the 409 count and its warning tell it).  Index names: see ``index`` and
:meth:`~sinks.elasticsearch.config.ElasticsearchSinkConfig.index_for` (two tables never
share an index by accident).
"""
