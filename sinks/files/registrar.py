"""The ``metastore`` partition-commit policy: the files sink's tables and complete partitions
registered in a Hive Metastore, as Flink's filesystem sink does with
``sink.partition-commit.policy.kind = metastore``.

Called by :class:`~sinks.files.committer.FilesCommitter` after the part files of a checkpoint
are visible, with two kinds of committables the writers prepare:

* ``{"kind": "table", "table", "dir", "columns"}`` (every table that got rows in the
  checkpoint): the external table is created at ``dir`` when missing, columns the metastore
  lacks are added; a column whose type differs is a terminal error naming it;
* a partition (``{"kind": "partition", "table", "dir", "part", ...}``) whose end the watermark
  has passed: added with ``IF NOT EXISTS`` semantics, so a replayed commit adds nothing.

The metastore is asked once per table per committer (the answer is kept) and once per
complete partition.
"""
from __future__ import annotations

import logging
import os
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from runtime.errors import TerminalError
from runtime.fs import is_url
from runtime.schema import split_table_id
from sinks.files.config import FilesSinkConfig
from sinks.files.hive import hive_name, partition_keys, partition_values, storage_of
from sinks.files.metastore import MetastoreClient

log = logging.getLogger(__name__)


class HiveRegistrar:
    """Registers tables and partitions of one files sink in the metastore of its config."""

    def __init__(self, config: FilesSinkConfig):
        assert config.metastore_uri is not None
        self._config = config
        self._root = config.root
        self._location_root = config.metastore_location
        self._storage = storage_of(config.format, config.format_options)
        self._keys = partition_keys(config.partition_format)
        self._client = MetastoreClient(config.metastore_uri)
        self._databases: set[str] = set()
        #: (db, table) -> Hive columns the metastore has (as far as this sink knows)
        self._tables: dict[tuple[str, str], list[tuple[str, str]]] = {}

    def check(self) -> None:
        """The metastore answers (raises the client's translated error otherwise)."""
        self._client.ping()

    def names(self, table_id: str) -> tuple[str, str]:
        """(metastore database, metastore table) of a table id."""
        try:
            db, table = split_table_id(table_id)
        except ValueError as exc:
            raise TerminalError(f"files sink: table {table_id!r}: {exc}") from None
        db = db or "default"
        return (hive_name(self._config.metastore_database, db, table, "database"),
                hive_name(self._config.metastore_table, db, table, "table"))

    def location(self, path: str) -> str:
        """``path`` (below the sink's root) as the metastore's readers reach it."""
        if self._location_root:
            rel = os.path.relpath(path, self._root) if not is_url(path) else \
                path[len(self._root):].lstrip("/")
            return self._location_root.rstrip("/") + ("/" + rel if rel != "." else "")
        if is_url(path):
            # hdfs://[user@]host:port names WebHDFS's HTTP port: Hadoop clients reach the same
            # files there as webhdfs://host:port
            u = urlsplit(path)
            return urlunsplit(("webhdfs", u.hostname + (f":{u.port}" if u.port else ""),
                               u.path, "", ""))
        return "file://" + os.path.abspath(path)

    def register_table(self, committable: dict[str, Any]) -> None:
        db, name = self.names(committable["table"])
        columns = [(str(n), str(t)) for n, t in committable["columns"]]
        parameters = {str(k): str(v) for k, v in committable.get("parameters", {}).items()}
        if self._tables.get((db, name)) == columns:
            return
        clashing = sorted({n.lower() for n, _ in columns} & set(self._keys))
        if clashing:
            raise TerminalError(f"files sink: table {committable['table']}: column "
                                f"{clashing[0]!r} is also a partition key of partition-format; "
                                f"Hive refuses such a table: rename the partition key")
        if db not in self._databases:
            self._client.ensure_database(db)
            self._databases.add(db)
        existing = self._client.table(db, name)
        if existing is None:
            location = self.location(committable["dir"])
            if self._client.create_table(db, name, location, columns, self._keys,
                                         self._storage, parameters):
                log.info("files sink: created table %s.%s in the metastore at %s", db, name,
                         location)
                self._tables[(db, name)] = columns
                return
            existing = self._client.table(db, name)  # created meanwhile by another run
            if existing is None:
                raise TerminalError(f"files sink: table {db}.{name} vanished from the "
                                    f"metastore while being created")
        self._reconcile(committable["table"], existing, columns, parameters)
        self._tables[(db, name)] = columns

    def add_partitions(self, table_id: str, parts: list[tuple[str, str]]) -> None:
        """Add the partitions ``[(directory, partition folder), ...]`` of a table (those that
        exist are left alone)."""
        db, name = self.names(table_id)
        columns = self._tables.get((db, name))
        if columns is None:  # e.g. a partition carried over a restart: the table is known there
            existing = self._client.table(db, name)
            if existing is None:
                raise TerminalError(f"files sink: table {db}.{name} is not in the metastore "
                                    f"(dropped there?); partition {parts[0][1]} can't be added")
            columns = [(f.name, f.type) for f in existing.sd.cols]
            self._tables[(db, name)] = columns
        located = []
        for directory, part in parts:
            values = partition_values(part)
            if len(values) != len(self._keys):
                raise TerminalError(f"files sink: partition folder {part!r} of table {table_id} "
                                    f"does not match partition keys {self._keys} (partition-"
                                    f"format changed while partitions were pending?)")
            located.append((values, self.location(directory)))
        self._client.add_partitions(db, name, located, self._storage, columns)

    def close(self) -> None:
        self._client.close()

    def _reconcile(self, table_id: str, existing: Any, columns: list[tuple[str, str]],
                   parameters: dict[str, str]) -> None:
        """Add the columns the metastore lacks, widen structs that gained fields, set the table
        ``parameters`` (e.g. a new avro.schema.literal); refuse other type changes and other
        partition keys."""
        db, name = existing.dbName, existing.tableName
        keys = [k.name.lower() for k in existing.partitionKeys or []]
        if keys != self._keys:
            raise TerminalError(f"files sink: table {db}.{name} in the metastore is partitioned "
                                f"by {keys}, partition-format gives {self._keys}; drop the "
                                f"table there or set metastore-table to another name")
        have = {f.name.lower(): f.type.lower() for f in existing.sd.cols}
        widened = {n.lower(): t for n, t in columns
                   if n.lower() in have and _widens(have[n.lower()], t)}
        for n, t in columns:
            if n.lower() in have and have[n.lower()] != t and n.lower() not in widened:
                raise TerminalError(f"files sink: table {table_id}, column {n!r} is "
                                    f"{have[n.lower()]} in the metastore table {db}.{name} but "
                                    f"the sink writes {t}; alter the column there or set "
                                    f"metastore-table to another name")
        new = [(n, t) for n, t in columns if n.lower() not in have]
        stale = {k: v for k, v in parameters.items() if (existing.parameters or {}).get(k) != v}
        if new or stale or widened:
            for f in existing.sd.cols:
                f.type = widened.get(f.name.lower(), f.type)
            self._client.alter_table(existing, new, stale)
            log.info("files sink: altered %s.%s in the metastore: new columns %s, parameters %s",
                     db, name, [n for n, _ in new], sorted(stale))


def _widens(old: str, new: str) -> bool:
    """``new`` is the struct ``old`` with fields appended (a row of the avro format's
    envelopes after columns were added)."""
    return old.startswith("struct<") and new.startswith(old[:-1] + ",") and new.endswith(">")
