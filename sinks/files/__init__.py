"""The files sink: change events into part files of a file format (Parquet, JSONL, CSV, ...)
or of a message format (Debezium/Canal/Maxwell JSON, JSON, raw: one message per line; Avro
container files) on a local filesystem or HDFS (``hdfs://`` paths, through WebHDFS), exactly
once, the Flink ``FileSink`` way.

Rows go to hidden in-progress part files; a checkpoint closes them (pending, still hidden);
the committer renames them to their visible names once the checkpoint is durable, and writes
``_SUCCESS`` into an event-time partition once the watermark has passed its end.
"""
