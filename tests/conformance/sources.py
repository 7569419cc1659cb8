"""The source cases of the conformance suite: one entry per source connector."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from runtime.source import Source


@dataclass
class SourceCase:
    make: Callable[[Path, int], Source]
    expected_events: Callable[[int], int]
    allows_duplicate_rows: bool = False


def _datagen(tmp: Path, splits: int) -> Source:
    from sources.datagen.config import DatagenConfig
    from sources.datagen.source import DatagenSource

    return DatagenSource(DatagenConfig.model_validate({
        "tables": ["orders", "customers"], "rows": 3000, "batch-size": 200, "splits": splits,
        "update-ratio": 0.2, "delete-ratio": 0.1, "event-time-start": "2026-11-24T10:00:00Z"}))


FILE_ROWS = 1000


def _files(fmt: str) -> Callable[[Path, int], Source]:
    def make(tmp: Path, splits: int) -> Source:
        import pyarrow as pa

        from formats.registry import resolve_format
        from sources.files.config import FilesSourceConfig
        from sources.files.source import FilesSource

        tmp.mkdir(parents=True, exist_ok=True)
        for old in tmp.glob(f"*.{fmt}"):
            old.unlink()
        f = resolve_format(fmt)
        for i in range(splits):
            ids = list(range(i * FILE_ROWS, (i + 1) * FILE_ROWS))
            table = pa.table({"id": pa.array(ids, pa.int64()),
                              "name": pa.array([f"n{x}" for x in ids]),
                              "ts": pa.array([1_700_000_000_000 + x for x in ids], pa.int64())})
            with open(tmp / f"part{i}.{fmt}", "wb") as out:
                w = f.open_writer(out, table.schema)
                w.write(table)
                w.close()
        return FilesSource(FilesSourceConfig.model_validate({
            "path": f"{tmp}/*.{fmt}", "format": fmt, "batch-size": 100, "primary-key": ["id"],
            "event-time-column": "ts"}))

    return make


def _hdfs_files(fmt: str) -> Callable[[Path, int], Source]:
    """The files source reading HDFS (the WebHDFS test server, or HUB_TEST_WEBHDFS's): the
    case's folder becomes the same path on HDFS."""

    def make(tmp: Path, splits: int) -> Source:
        import io

        import pyarrow as pa

        from formats.registry import resolve_format
        from runtime.fs import filesystem
        from sources.files.config import FilesSourceConfig
        from sources.files.source import FilesSource
        from tests.servers.webhdfs import shared

        base = f"{shared().url}{tmp}"
        fs = filesystem(base)
        fs.rmtree(base)
        f = resolve_format(fmt)
        for i in range(splits):
            ids = list(range(i * FILE_ROWS, (i + 1) * FILE_ROWS))
            table = pa.table({"id": pa.array(ids, pa.int64()),
                              "name": pa.array([f"n{x}" for x in ids]),
                              "ts": pa.array([1_700_000_000_000 + x for x in ids], pa.int64())})
            out = io.BytesIO()
            w = f.open_writer(out, table.schema)
            w.write(table)
            w.close()
            fs.write_bytes(f"{base}/part{i}.{fmt}", out.getvalue())
        return FilesSource(FilesSourceConfig.model_validate({
            "path": f"{base}/*.{fmt}", "format": fmt, "batch-size": 100, "primary-key": ["id"],
            "event-time-column": "ts"}))

    return make


def _message_files(fmt: str, hdfs: bool = False) -> Callable[[Path, int], Source]:
    """The files source reading files of messages (written as the files sink writes them),
    locally or on HDFS (the WebHDFS test server, or HUB_TEST_WEBHDFS's)."""

    def make(tmp: Path, splits: int) -> Source:
        import io

        from formats.registry import resolve_files_format
        from runtime.batch import ChangeBatch
        from runtime.fs import filesystem
        from runtime.schema import Column, TableSchema
        from runtime.types import T
        from sources.files.config import FilesSourceConfig
        from sources.files.source import FilesSource

        if hdfs:
            from tests.servers.webhdfs import shared

            base = f"{shared().url}{tmp}"
            filesystem(base).rmtree(base)
        f = resolve_files_format(fmt)
        ext = f.file_extension
        if not hdfs:
            tmp.mkdir(parents=True, exist_ok=True)
            for old in tmp.glob(f"*.{ext}"):
                old.unlink()
            base = str(tmp)
        fs = filesystem(base)
        schema = TableSchema("conf.events", (Column("id", T("BIGINT"), False),
                                             Column("name", T("STRING")),
                                             Column("ts", T("BIGINT"))), ("id",))
        if fmt == "raw":  # one value per line: the names
            schema = TableSchema("conf.events", schema.columns[:2], ("id",))
        for i in range(splits):
            ids = range(i * FILE_ROWS, (i + 1) * FILE_ROWS)
            rows = [(x, f"n{x}", 1_700_000_000_000 + x)[:len(schema.columns)] for x in ids]
            out = io.BytesIO()
            w = f.open_file_writer(out, schema)
            for lo in range(0, FILE_ROWS, 128):
                w.write(ChangeBatch(schema, "c" * len(rows[lo:lo + 128]), rows=rows[lo:lo + 128]))
            w.close()
            fs.write_bytes(f"{base}/part{i}.{ext}", out.getvalue())
        options = {"path": f"{base}/*.{ext}", "format": fmt, "batch-size": 100}
        if fmt != "raw":
            options.update({"primary-key": ["id"], "event-time-column": "ts"})
        return FilesSource(FilesSourceConfig.model_validate(options))

    return make


KAFKA_ROWS = 600


def _kafka(tmp: Path, splits: int) -> Source:
    """A topic with ``splits`` partitions (made and filled once per test folder), read to
    the offsets latest at start."""
    import hashlib
    import json

    from sources.kafka.config import KafkaSourceConfig
    from sources.kafka.source import KafkaSource
    from tests.servers.kafka import shared

    kafka = shared()
    topic = "conf-" + hashlib.sha1(str(tmp).encode()).hexdigest()[:12] + f"-{splits}"
    marker = tmp / f"{topic}.created"
    if not marker.exists():
        kafka.create_topic(topic, partitions=splits)
        kafka.produce(topic, [(json.dumps({"id": i}).encode(),
                               json.dumps({"id": i, "name": f"n{i}"}).encode())
                              for i in range(splits * KAFKA_ROWS)])
        tmp.mkdir(parents=True, exist_ok=True)
        marker.touch()
    return KafkaSource(KafkaSourceConfig.model_validate({
        "bootstrap-servers": kafka.bootstrap, "topics": [topic], "bounded": "latest-offset",
        "max-batch-messages": 50, "format-options": {
            "columns": {"id": "BIGINT", "name": "STRING"}, "primary-key": ["id"]}}))


MYSQL_ROWS = 3000


def _mysql(tmp: Path, splits: int) -> Source:
    """A snapshot (startup-mode initial-only) of a MariaDB table of its own, cut into
    ``splits`` chunks; the table is made once per case folder."""
    import hashlib

    from sources.mysql.config import MySqlSourceConfig
    from sources.mysql.source import MySqlSource
    from tests.servers import mariadb

    server = mariadb.shared()
    db = "conf_" + hashlib.sha1(f"{tmp}/{splits}".encode()).hexdigest()[:12]
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE IF NOT EXISTS {db}")
        cur.execute(f"CREATE TABLE IF NOT EXISTS {db}.orders (id BIGINT PRIMARY KEY, "
                    "name VARCHAR(40), amount DECIMAL(10,2))")
        cur.execute(f"SELECT COUNT(*) FROM {db}.orders")
        if cur.fetchone()[0] == 0:
            cur.executemany(f"INSERT INTO {db}.orders VALUES (%s, %s, %s)",
                            [(i, f"n{i}", i / 100) for i in range(MYSQL_ROWS)])
    conn.close()
    return MySqlSource(MySqlSourceConfig.model_validate({
        "hostname": server.host, "port": server.port, "username": server.user,
        "password": server.password, "tables": [f"{db}\\.orders"],
        "startup-mode": "initial-only", "chunk-size": -(-MYSQL_ROWS // splits)}))


SOURCE_CASES: dict[str, SourceCase] = {
    "mysql": SourceCase(_mysql, lambda splits: MYSQL_ROWS),
    "kafka": SourceCase(_kafka, lambda splits: splits * KAFKA_ROWS),
    "datagen": SourceCase(_datagen, lambda splits: 2 * 3000),
    **{f"files-{fmt}": SourceCase(_files(fmt), lambda splits: splits * FILE_ROWS)
       for fmt in ("csv", "jsonl", "parquet")},
    **{f"hdfs-files-{fmt}": SourceCase(_hdfs_files(fmt), lambda splits: splits * FILE_ROWS)
       for fmt in ("csv", "parquet")},
    **{f"files-{fmt}": SourceCase(_message_files(fmt), lambda splits: splits * FILE_ROWS)
       for fmt in ("json", "debezium-json", "canal-json", "maxwell-json", "avro", "raw")},
    "hdfs-files-debezium-json": SourceCase(_message_files("debezium-json", hdfs=True),
                                           lambda splits: splits * FILE_ROWS),
}
