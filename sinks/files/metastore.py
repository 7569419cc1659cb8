"""A small Hive Metastore client for the files sink's ``metastore`` partition-commit policy:
create a database and an external table once, add partitions idempotently.

It speaks the metastore's Thrift protocol through the bindings pyiceberg ships (module
``hive_metastore``, extra ``metastore``) over a buffered binary transport, as Hive's own
clients do without SASL.  Calls used exist in Hive 3 and 4 (``get_table_req``,
``add_partitions_req``; Hive 4 dropped ``get_table``).

Errors, one translation (:func:`_translate`): an unreachable or dropped metastore (socket and
transport errors) is transient; what the metastore refuses (``MetaException``,
``InvalidObjectException``, an unknown method) is terminal, in one line naming the metastore,
the table and what was asked.
"""
from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlparse

from runtime.errors import ConfigError, HubError, MissingExtraError, TerminalError, TransientError
from sinks.files.hive import Storage

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Socket timeout of one metastore call: creating a table on a busy metastore takes seconds.
TIMEOUT_S = 60.0
#: Partitions added by one call (a backfill completes many at once).
PARTITIONS_PER_CALL = 500


def parse_uri(uri: str) -> tuple[str, int]:
    """``thrift://host:port`` -> (host, port); port 9083 when omitted."""
    u = urlparse(uri)
    if u.scheme != "thrift" or not u.hostname:
        raise ConfigError(f"expected thrift://host:port, got {uri!r}", key="metastore-uri")
    return u.hostname, u.port or 9083


class MetastoreClient:
    """One connection to a Hive Metastore, opened at the first call and reopened after a
    transport error.  Thread-confined (the committer's thread)."""

    def __init__(self, uri: str):
        self.uri = uri
        self._host, self._port = parse_uri(uri)
        try:
            from hive_metastore import ttypes  # noqa: F401
            from thrift.transport import TTransport  # noqa: F401
        except ImportError as exc:
            raise MissingExtraError(exc.name or "hive_metastore", "metastore") from None
        self._transport: Any = None
        self._client: Any = None

    # -- operations ---------------------------------------------------------------------------
    def ping(self) -> None:
        """One cheap call: the metastore answers."""
        self._call("listing databases", lambda c: c.get_all_databases())

    def ensure_database(self, db: str) -> None:
        """Create database ``db`` (at the metastore's default location) unless it exists."""
        from hive_metastore import ttypes as H

        def create(c: Any) -> None:
            try:
                c.get_database(db)
                return
            except H.NoSuchObjectException:
                pass
            try:
                c.create_database(H.Database(name=db, description="created by cdc-hub",
                                             parameters={}))
            except H.AlreadyExistsException:
                pass  # created meanwhile by another committer

        self._call(f"creating database {db}", create)

    def table(self, db: str, table: str) -> Any | None:
        """The metastore's ``Table`` of ``db.table``, or None."""
        from hive_metastore import ttypes as H

        def get(c: Any) -> Any | None:
            try:
                return c.get_table_req(H.GetTableRequest(dbName=db, tblName=table)).table
            except H.NoSuchObjectException:
                return None

        return self._call(f"reading table {db}.{table}", get)

    def create_table(self, db: str, table: str, location: str, columns: list[tuple[str, str]],
                     partition_keys: list[str], storage: Storage,
                     parameters: dict[str, str] | None = None) -> bool:
        """Create the external table ``db.table`` at ``location`` (with table ``parameters``
        beyond the storage's); False when it exists."""
        from hive_metastore import ttypes as H

        tbl = H.Table(
            tableName=table, dbName=db, owner="cdc-hub", sd=self._sd(location, columns, storage),
            partitionKeys=[H.FieldSchema(k, "string", None) for k in partition_keys],
            parameters={"EXTERNAL": "TRUE", **storage.table_parameters, **(parameters or {})},
            tableType="EXTERNAL_TABLE")

        def create(c: Any) -> bool:
            try:
                c.create_table(tbl)
                return True
            except H.AlreadyExistsException:
                return False

        return self._call(f"creating table {db}.{table}", create)

    def alter_table(self, existing: Any, columns: list[tuple[str, str]],
                    parameters: dict[str, str]) -> None:
        """Append ``columns`` to the table ``existing`` (a ``Table`` from :meth:`table`) and
        set its ``parameters``."""
        from hive_metastore import ttypes as H

        existing.sd.cols = list(existing.sd.cols) + [H.FieldSchema(n, t, None)
                                                     for n, t in columns]
        existing.parameters = {**(existing.parameters or {}), **parameters}
        db, name = existing.dbName, existing.tableName
        self._call(f"altering table {db}.{name}",
                   lambda c: c.alter_table(db, name, existing))

    def add_partitions(self, db: str, table: str, parts: list[tuple[list[str], str]],
                       storage: Storage, columns: list[tuple[str, str]]) -> None:
        """Add the partitions ``[(values, location), ...]``, :data:`PARTITIONS_PER_CALL` a
        call; those that exist are left alone."""
        from hive_metastore import ttypes as H

        for at in range(0, len(parts), PARTITIONS_PER_CALL):
            chunk = parts[at:at + PARTITIONS_PER_CALL]
            request = H.AddPartitionsRequest(
                dbName=db, tblName=table, ifNotExists=True, needResult=False,
                parts=[H.Partition(values=values, dbName=db, tableName=table, parameters={},
                                   sd=self._sd(location, columns, storage))
                       for values, location in chunk])
            what = f"adding partition {chunk[0][0]}" + (
                f" and {len(chunk) - 1} more" if len(chunk) > 1 else "") + f" to {db}.{table}"
            self._call(what, lambda c, r=request: c.add_partitions_req(r))

    def close(self) -> None:
        if self._transport is not None:
            try:
                self._transport.close()
            except Exception as exc:  # noqa: BLE001 - closing a dead socket
                log.debug("metastore %s: closing: %s", self.uri, exc)
        self._transport = self._client = None

    # -- internals ------------------------------------------------------------------------------
    @staticmethod
    def _sd(location: str, columns: list[tuple[str, str]], storage: Storage) -> Any:
        from hive_metastore import ttypes as H

        return H.StorageDescriptor(
            cols=[H.FieldSchema(n, t, None) for n, t in columns], location=location,
            inputFormat=storage.input_format, outputFormat=storage.output_format,
            compressed=False, numBuckets=-1,
            serdeInfo=H.SerDeInfo(serializationLib=storage.serde,
                                  parameters=dict(storage.serde_parameters)),
            bucketCols=[], sortCols=[], parameters={})

    def _connect(self) -> Any:
        if self._client is None:
            from hive_metastore.ThriftHiveMetastore import Client
            from thrift.protocol import TBinaryProtocol
            from thrift.transport import TSocket, TTransport

            sock = TSocket.TSocket(self._host, self._port)
            sock.setTimeout(TIMEOUT_S * 1000)
            transport = TTransport.TBufferedTransport(sock)
            transport.open()
            self._transport = transport
            self._client = Client(TBinaryProtocol.TBinaryProtocol(transport))
        return self._client

    def _call(self, what: str, op: Callable[[Any], T]) -> T:
        try:
            return op(self._connect())
        except HubError:
            raise
        except Exception as exc:  # noqa: BLE001 - translated, once, here
            error = _translate(self.uri, what, exc)
            if error.transient:
                self.close()  # the connection may be half-used: the retry opens a new one
            raise error from exc


def _translate(uri: str, what: str, exc: Exception) -> HubError:
    """The one translation of this client's errors (see the module docstring)."""
    from hive_metastore import ttypes as H
    from thrift.Thrift import TApplicationException
    from thrift.transport.TTransport import TTransportException

    detail = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    detail = " ".join(str(detail).split())[:500]  # one line
    line = f"files sink: Hive Metastore {uri}: {what}: {detail}"
    if isinstance(exc, (TTransportException, socket.error, OSError, EOFError)):
        return TransientError(line)
    if isinstance(exc, (H.MetaException, H.InvalidObjectException, H.NoSuchObjectException,
                        H.AlreadyExistsException, H.InvalidOperationException,
                        TApplicationException)):
        return TerminalError(line)
    return TerminalError(f"{line} ({type(exc).__name__})")
