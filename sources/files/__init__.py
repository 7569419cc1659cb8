"""``type = "files"``: rows of CSV, JSON lines or Parquet files (one file, a directory, or a
glob), read once (bounded) or watched for new files (``monitor-interval``).

One split per file; its progress is a byte offset (csv, jsonl) or a row count (parquet), so a
restored pipeline resumes each file exactly where its last checkpoint was.
"""
