"""``type = "files"``: rows of CSV, JSON lines or Parquet files, or the change events of files
of messages (debezium-json, canal-json, maxwell-json, json, raw: one per line; avro: container
files) (one file, a directory, or a glob), read once (bounded) or watched for new files
(``monitor-interval``).

One split per file; its progress is a byte offset (csv, jsonl, message lines; avro: of the
next block) or a row count (parquet), so a restored pipeline resumes each file exactly where
its last checkpoint was.
"""
