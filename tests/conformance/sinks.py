"""The sink cases of the conformance suite: one entry per sink connector (and format).

A case makes a sink writing under a folder and reads back what is *visible* there as a
multiset of ``(table, op, id, name)``."""
from __future__ import annotations

import glob
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from runtime.sink import Sink


@dataclass
class SinkCase:
    make: Callable[[Path], Sink]
    read: Callable[[Path], Counter]
    #: An upsert sink (one row per key): ``read`` gives ``(table, id, name)`` of live rows and
    #: is compared with the final state instead of the changelog.
    upsert: bool = False


def _files(fmt: str) -> SinkCase:
    def make(root: Path) -> Sink:
        from sinks.files.config import FilesSinkConfig
        from sinks.files.sink import FilesSink

        return FilesSink(FilesSinkConfig.model_validate({
            "path": str(root), "format": fmt, "partition-format": "dt=%Y-%m-%d"}))

    def read(root: Path) -> Counter:
        rows: Counter = Counter()
        for path in glob.glob(os.path.join(root, "**", f"*.{fmt}"), recursive=True):
            if os.path.basename(path).startswith("."):
                continue
            if fmt == "parquet":
                t = pq.read_table(path)
            elif fmt == "jsonl":
                t = pajson.read_json(path)
            else:
                t = pacsv.read_csv(path)
            table = ".".join(os.path.relpath(path, root).split(os.sep)[:2])
            for op, id_, name in zip(*(t.column(c).to_pylist() for c in ("op", "id", "name"))):
                rows[(table, op, int(id_), name)] += 1
        return rows

    return SinkCase(make, read)


#: How each message format names the ops (Canal and Maxwell spell them out).
_MESSAGE_OPS = {"INSERT": "c", "UPDATE": "u", "DELETE": "d", "insert": "c", "update": "u",
                "delete": "d", "bootstrap-insert": "r"}


def _message_rows(fmt: str, data: bytes, table: str) -> list[tuple]:
    """``(table, op, id, name)`` of each message of a part file of a message format, read
    with plain JSON / fastavro (what any consumer of the files would do)."""
    import io
    import json

    if fmt == "avro":
        import fastavro

        messages = list(fastavro.reader(io.BytesIO(data)))
    else:
        messages = [json.loads(line) for line in data.splitlines()]
    out = []
    for m in messages:
        if fmt in ("debezium-json", "avro"):
            op, row = m["op"], m["before"] if m["op"] == "d" else m["after"]
        elif fmt == "canal-json":
            op, row = _MESSAGE_OPS[m["type"]], m["data"][0]
        elif fmt == "maxwell-json":
            op, row = _MESSAGE_OPS[m["type"]], m["data"]
        else:  # json: the row with its op
            op, row = m["op"], m
        out.append((table, op, int(row["id"]), row["name"]))
    return out


def _message_files(fmt: str, hdfs: bool = False) -> SinkCase:
    """The files (or hdfs) sink writing files of messages (one per line; avro: container
    files), read back with a plain JSON parser or fastavro."""
    ext = "avro" if fmt == "avro" else "json"

    def url(root: Path) -> str:
        from tests.servers.webhdfs import shared

        return f"{shared().url}{root}" if hdfs else str(root)

    def make(root: Path) -> Sink:
        if hdfs:
            from sinks.hdfs.config import HdfsSinkConfig
            from sinks.hdfs.sink import HdfsSink

            return HdfsSink(HdfsSinkConfig.model_validate({
                "path": url(root), "format": fmt, "partition-format": "dt=%Y-%m-%d"}))
        from sinks.files.config import FilesSinkConfig
        from sinks.files.sink import FilesSink

        return FilesSink(FilesSinkConfig.model_validate({
            "path": str(root), "format": fmt, "partition-format": "dt=%Y-%m-%d"}))

    def read(root: Path) -> Counter:
        from runtime.fs import filesystem

        base = url(root)
        fs = filesystem(base)
        rows: Counter = Counter()
        if not fs.exists(base):
            return rows
        for _d, _dirs, files in fs.walk(base):
            for f in files:
                if f.name.startswith(".") or not f.name.endswith(f".{ext}"):
                    continue
                table = ".".join(f.path[len(base):].strip("/").split("/")[:2])
                rows.update(_message_rows(fmt, fs.read_bytes(f.path), table))
        return rows

    return SinkCase(make, read)


def _hdfs(fmt: str) -> SinkCase:
    """The hdfs sink on the WebHDFS test server (or HUB_TEST_WEBHDFS's namenode); the case's
    folder becomes the same path on HDFS."""

    def url(root: Path) -> str:
        from tests.servers.webhdfs import shared

        return f"{shared().url}{root}"

    def make(root: Path) -> Sink:
        from sinks.hdfs.config import HdfsSinkConfig
        from sinks.hdfs.sink import HdfsSink

        return HdfsSink(HdfsSinkConfig.model_validate({
            "path": url(root), "format": fmt, "partition-format": "dt=%Y-%m-%d"}))

    def read(root: Path) -> Counter:
        import pyarrow as pa

        from runtime.fs import filesystem

        base = url(root)
        fs = filesystem(base)
        rows: Counter = Counter()
        for _d, _dirs, files in fs.walk(base):
            for f in files:
                if f.name.startswith(".") or not f.name.endswith(f".{fmt}"):
                    continue
                t = pq.read_table(pa.BufferReader(fs.read_bytes(f.path)))
                table = ".".join(f.path[len(base):].strip("/").split("/")[:2])
                for op, id_, name in zip(*(t.column(c).to_pylist() for c in ("op", "id", "name"))):
                    rows[(table, op, int(id_), name)] += 1
        return rows

    return SinkCase(make, read)


def _prefix(root: Path) -> str:
    """A name unique to one test's output folder (indexes and tables are shared by tests)."""
    import hashlib

    return "conf-" + hashlib.sha1(str(root).encode()).hexdigest()[:12]


def _elasticsearch() -> SinkCase:
    """The elasticsearch sink on a real OpenSearch node (or HUB_TEST_ELASTICSEARCH's), one index per
    table named ``<prefix>-<db>.<table>``."""

    def make(root: Path) -> Sink:
        from sinks.elasticsearch.config import ElasticsearchSinkConfig
        from sinks.elasticsearch.sink import ElasticsearchSink
        from tests.servers.elasticsearch import shared

        es = shared()
        return ElasticsearchSink(ElasticsearchSinkConfig.model_validate({
            "hosts": [es.url], **es.options, "index": _prefix(root) + "-{db}.{table}",
            "bulk-max-actions": 50}))

    def read(root: Path) -> Counter:
        from tests.servers.elasticsearch import shared

        es = shared().client()
        pattern = _prefix(root) + "-*"
        es.indices.refresh(index=pattern, allow_no_indices=True)
        hits = es.search(index=pattern, size=10_000, allow_no_indices=True)["hits"]["hits"]
        es.close()
        return Counter((h["_index"][len(_prefix(root)) + 1:], h["_source"]["id"],
                        h["_source"]["name"]) for h in hits)

    return SinkCase(make, read, upsert=True)


def _hbase() -> SinkCase:
    """The hbase sink on the tests' HBase (tests/servers/hbase_thrift.py:shared), one table per
    source table named ``<prefix>-<db>.<table>``."""

    def make(root: Path) -> Sink:
        from sinks.hbase.config import HBaseSinkConfig
        from sinks.hbase.sink import HBaseSink
        from tests.servers.hbase_thrift import shared

        hb = shared()
        return HBaseSink(HBaseSinkConfig.model_validate({
            "host": hb.host, "port": hb.port, "table": _prefix(root) + "-{db}.{table}",
            "batch-size": 50}))

    def read(root: Path) -> Counter:
        import happybase

        from sinks.hbase.types import decode_int_key
        from tests.servers.hbase_thrift import shared

        hb = shared()
        conn = happybase.Connection(hb.host, hb.port)
        rows: Counter = Counter()
        for name in conn.tables():
            table = name.decode()
            if table.startswith(_prefix(root) + "-"):
                for key, cells in conn.table(name).scan():
                    rows[(table[len(_prefix(root)) + 1:], decode_int_key(key),
                          cells[b"cf:name"].decode())] += 1
        conn.close()
        return rows

    return SinkCase(make, read, upsert=True)


def _kafka_topic(root: Path) -> str:
    import hashlib

    return "conf-sink-" + hashlib.sha1(str(root).encode()).hexdigest()[:12]


def _kafka_make(root: Path) -> Sink:
    from sinks.kafka.config import KafkaSinkConfig
    from sinks.kafka.sink import KafkaSink
    from tests.servers.kafka import shared

    kafka = shared()
    topic = _kafka_topic(root)
    if not root.exists():
        kafka.create_topic(topic, partitions=2)
        root.mkdir(parents=True)
    return KafkaSink(KafkaSinkConfig.model_validate({
        "bootstrap-servers": kafka.bootstrap, "topic": topic, "format": "json",
        "transactional-id-prefix": topic}))


def _kafka_read(root: Path) -> Counter:
    import json

    from tests.servers.kafka import shared

    rows: Counter = Counter()
    for m in shared().consume_all(_kafka_topic(root)):
        v = json.loads(m.value())
        rows[("test.orders", v["op"], v["id"], v["name"])] += 1
    return rows


SINK_CASES: dict[str, SinkCase] = {
    "kafka": SinkCase(_kafka_make, _kafka_read),
    "files-parquet": _files("parquet"),
    "files-jsonl": _files("jsonl"),
    "files-csv": _files("csv"),
    "elasticsearch": _elasticsearch(),
    "hbase": _hbase(),
    "hdfs-parquet": _hdfs("parquet"),
    **{f"files-{fmt}": _message_files(fmt)
       for fmt in ("json", "debezium-json", "canal-json", "maxwell-json", "avro")},
    "hdfs-avro": _message_files("avro", hdfs=True),
}


def _jdbc(flavor: str, upsert: bool) -> SinkCase:
    # Real PostgreSQL / MariaDB servers, started once per process (or HUB_TEST_POSTGRES /
    # HUB_TEST_MYSQL).  Upsert: final state per key; changelog: append mode, every event a
    # row (see tests/integration/jdbc/cases.py).
    from tests.integration.jdbc.cases import jdbc_case

    return jdbc_case(flavor, upsert)


def _delta(write_mode: str) -> SinkCase:
    """The delta sink on a local folder, read back with deltalake: upsert (live rows per
    key) or append (every change a row with its op)."""

    def make(root: Path) -> Sink:
        from sinks.delta.config import DeltaSinkConfig
        from sinks.delta.sink import DeltaSink

        return DeltaSink(DeltaSinkConfig.model_validate({"path": str(root),
                                                         "write-mode": write_mode}))

    def read(root: Path) -> Counter:
        from deltalake import DeltaTable

        rows: Counter = Counter()
        for log_dir in glob.glob(os.path.join(root, "*", "*", "_delta_log")):
            folder = os.path.dirname(log_dir)
            table = ".".join(os.path.relpath(folder, root).split(os.sep))
            t = DeltaTable(folder).to_pyarrow_table()
            if write_mode == "upsert":
                rows.update((table, i, n) for i, n in zip(*(t.column(c).to_pylist()
                                                            for c in ("id", "name"))))
            else:
                rows.update((table, op, i, n) for op, i, n in zip(
                    *(t.column(c).to_pylist() for c in ("op", "id", "name"))))
        return rows

    return SinkCase(make, read, upsert=write_mode == "upsert")


SINK_CASES.update({"delta": _delta("upsert"), "delta-changelog": _delta("append")})

SINK_CASES.update({"jdbc-postgres": _jdbc("postgres", True),
                   "jdbc-mariadb": _jdbc("mariadb", True),
                   "jdbc-postgres-changelog": _jdbc("postgres", False),
                   "jdbc-mariadb-changelog": _jdbc("mariadb", False)})


def _iceberg(write_mode: str) -> SinkCase:
    """The iceberg sink with its default catalog (a SQLite file in the warehouse), read back
    with pyiceberg: live rows of upsert tables, changelog rows of append mode."""

    def make(root: Path) -> Sink:
        from sinks.iceberg.config import IcebergSinkConfig
        from sinks.iceberg.sink import IcebergSink

        return IcebergSink(IcebergSinkConfig.model_validate({
            "warehouse": str(root), "write-mode": write_mode}))

    def read(root: Path) -> Counter:
        from tests.integration.iceberg.reading import read_tables

        rows: Counter = Counter()
        for table, t in read_tables(root).items():
            cols = ("id", "name") if write_mode == "upsert" else ("op", "id", "name")
            for values in zip(*(t.column(c).to_pylist() for c in cols)):
                rows[(table, *values)] += 1
        return rows

    return SinkCase(make, read, upsert=write_mode == "upsert")


SINK_CASES.update({"iceberg": _iceberg("upsert"), "iceberg-changelog": _iceberg("append")})
