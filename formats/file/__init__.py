"""File formats (parquet, csv, jsonl) and files of messages; see :mod:`formats.file.base`."""
