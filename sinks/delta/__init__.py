"""The Delta Lake sink: one Delta table per source table, exactly once (``deltalake``).

Writers stage each checkpoint's changes in write-ahead-log segments (nothing is visible
before the checkpoint completes); the committer commits one Delta transaction per table and
checkpoint, carrying the application transaction ``(hub:<pipeline>:delta, checkpoint id)``, so
a replay after a crash never applies a checkpoint twice (:mod:`sinks.delta.committer`).  A
table with a primary key holds the source table's current state (one MERGE per checkpoint);
one without a key, or with ``write-mode = "append"``, gets change rows with ``op``, ``ts_ms``
and ``seq``.  Types: :mod:`sinks.delta.types`; partitions: :mod:`sinks.delta.partition`;
schema evolution: :mod:`sinks.delta.evolution`.
"""
