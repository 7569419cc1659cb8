"""A TEST SERVER speaking HBase's Thrift1 protocol, in memory: no longer behind the default
suite (tests/servers/hbase.py starts a real HBase 2.6 for it); ``HUB_STAND_INS=1`` picks
this one instead, for a machine without Java or Maven, where it runs the HBase suite but its
restart fault test (a real server's fault) in seconds.

It serves happybase's own IDL (``Hbase.thrift``, shipped in the happybase wheel) with
thriftpy2: the same wire protocol the HBase Thrift server speaks (binary protocol, buffered
transport).  It implements what happybase's ``Connection``/``Table`` and our HBase sink use,
with HBase's version semantics:

* tables with column families (``maxVersions``), created, listed, described, deleted;
* ``mutateRow(s)`` / ``mutateRow(s)Ts``: puts and deletes at a timestamp (the server's clock
  in milliseconds when none is given); a put at the timestamp of an existing cell replaces it;
* the newest visible version of a cell wins; a delete at timestamp T (of a column, a family
  or a whole row) hides every version <= T, also versions written *after* the delete with a
  timestamp <= T (HBase keeps delete markers until a major compaction; here: forever);
* ``getRow(s)`` / ``...WithColumns`` / ``...Ts`` (only versions < ts), ``getVer(Ts)``,
  ``deleteAll(Row)(Ts)``, scanners (``scannerOpenWithScan`` and the older ``scannerOpen*``
  calls, ``scannerGet(List)``, ``scannerClose``) over sorted row keys, forward or reversed.

Not implemented (the call fails with an ``IOError`` naming it): filter strings, counters,
``append``, ``checkAndPut``, region operations.  Not a production HBase: no persistence, no
regions, one global lock.

Use :class:`HBaseThriftTestServer` (a subprocess on a free port), or run
``python -m tests.servers.hbase_thrift --port 9090``.  ``HUB_TEST_HBASE=host:port`` points the
tests at an external HBase Thrift server instead (docker-compose's).
"""
from __future__ import annotations

import argparse
import bisect
import gc
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import happybase  # noqa: F401 - loads the IDL as the module Hbase_thrift

import Hbase_thrift as T  # type: ignore[import-not-found]  # noqa: E402

Cells = dict[bytes, list[tuple[int, bytes]]]  # column -> [(timestamp, value)], newest first


def _now_ms() -> int:
    return int(time.time() * 1000)


def _split(column: bytes) -> tuple[bytes, bytes | None]:
    """``cf`` -> (cf, None): the family; ``cf:q`` -> (cf, q); ``cf:`` -> (cf, b""): the column
    with the empty qualifier (HBase's CellUtil.parseColumn)."""
    fam, colon, qualifier = column.partition(b":")
    return fam, (qualifier if colon else None)


@dataclass
class _Table:
    families: dict[bytes, Any]
    rows: dict[bytes, Cells] = field(default_factory=dict)
    #: delete markers: row -> ts; row -> {family: ts}; row -> {column: ts}
    row_deletes: dict[bytes, int] = field(default_factory=dict)
    family_deletes: dict[bytes, dict[bytes, int]] = field(default_factory=dict)
    column_deletes: dict[bytes, dict[bytes, int]] = field(default_factory=dict)
    enabled: bool = True
    _sorted: list[bytes] | None = None

    def sorted_keys(self) -> list[bytes]:
        if self._sorted is None:
            self._sorted = sorted(self.rows)
        return self._sorted

    def hidden_below(self, row: bytes, column: bytes) -> int:
        """Versions with a timestamp <= this are deleted."""
        fam = column.partition(b":")[0]
        return max(self.row_deletes.get(row, -1), self.family_deletes.get(row, {}).get(fam, -1),
                   self.column_deletes.get(row, {}).get(column, -1))

    def put(self, row: bytes, column: bytes, value: bytes, ts: int) -> None:
        fam = column.partition(b":")[0]
        desc = self.families.get(fam)
        if desc is None:
            raise T.IOError(f"NoSuchColumnFamilyException: column family "
                            f"{fam.decode(errors='replace')} does not exist")
        if ts <= self.hidden_below(row, column):
            return  # masked by a delete marker: invisible forever, so not even kept
        cells = self.rows.get(row)
        if cells is None:
            cells = self.rows[row] = {}
            self._sorted = None
        versions = cells.setdefault(column, [])
        stamps = [-t for t, _ in versions]
        i = bisect.bisect_left(stamps, -ts)
        if i < len(versions) and versions[i][0] == ts:
            versions[i] = (ts, value)
        else:
            versions.insert(i, (ts, value))
            del versions[max(1, desc.maxVersions):]

    def delete(self, row: bytes, column: bytes | None, ts: int) -> None:
        """Delete every version <= ts of a column (``cf:q``), a family (``cf``) or the row."""
        if column is None:
            self.row_deletes[row] = max(ts, self.row_deletes.get(row, -1))
        else:
            fam, qualifier = _split(column)
            if fam not in self.families:
                raise T.IOError(f"NoSuchColumnFamilyException: column family "
                                f"{fam.decode(errors='replace')} does not exist")
            if qualifier is None:
                marks = self.family_deletes.setdefault(row, {})
                marks[fam] = max(ts, marks.get(fam, -1))
            else:
                marks = self.column_deletes.setdefault(row, {})
                marks[column] = max(ts, marks.get(column, -1))
        cells = self.rows.get(row)
        if cells is None:
            return
        for col in list(cells):
            limit = self.hidden_below(row, col)
            cells[col] = [(t, v) for t, v in cells[col] if t > limit]
            if not cells[col]:
                del cells[col]
        if not cells:
            del self.rows[row]
            self._sorted = None

    def read(self, row: bytes, columns: list[bytes] | None, before: int | None,
             versions: int = 1) -> Cells:
        """Visible versions (newest first) of the wanted columns, only those < ``before``."""
        cells = self.rows.get(row)
        if not cells:
            return {}
        wanted_fams, wanted_cols = set(), set()
        for c in columns or ():
            fam, qualifier = _split(c)
            (wanted_cols.add(c) if qualifier is not None else wanted_fams.add(fam))
        out: Cells = {}
        for col, vs in cells.items():
            if columns and col not in wanted_cols and col.partition(b":")[0] not in wanted_fams:
                continue
            limit = self.hidden_below(row, col)
            visible = [(t, v) for t, v in vs if t > limit and (before is None or t < before)]
            if visible:
                out[col] = visible[:versions]
        return out


class HBaseHandler:
    """The Thrift1 ``Hbase`` service over in-memory tables."""

    def __init__(self) -> None:
        self.tables: dict[bytes, _Table] = {}
        self.scanners: dict[int, Iterator[Any]] = {}
        self.next_scanner = 1
        self.lock = threading.RLock()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in T.Hbase.thrift_services:
            raise AttributeError(name)

        def unsupported(*_args: Any) -> None:
            raise T.IOError(f"{name} is not implemented by the HBase Thrift test server")
        return unsupported

    def _table(self, name: bytes) -> _Table:
        table = self.tables.get(name)
        if table is None:
            raise T.IOError(f"TableNotFoundException: {name.decode(errors='replace')}")
        if not table.enabled:
            raise T.IOError(f"TableNotEnabledException: {name.decode(errors='replace')}")
        return table

    # -- tables -------------------------------------------------------------------------------
    def getTableNames(self) -> list[bytes]:  # noqa: N802 - Thrift names
        with self.lock:
            return sorted(self.tables)

    def createTable(self, name: bytes, families: list[Any]) -> None:  # noqa: N802
        with self.lock:
            if name in self.tables:
                raise T.AlreadyExists(f"table {name.decode(errors='replace')} exists")
            if not families:
                raise T.IllegalArgument("a table needs at least one column family")
            fams = {}
            for d in families:
                fam = d.name.rstrip(b":")
                fams[fam] = T.ColumnDescriptor(name=fam + b":", maxVersions=d.maxVersions,
                                               compression=d.compression, inMemory=d.inMemory,
                                               bloomFilterType=d.bloomFilterType,
                                               blockCacheEnabled=d.blockCacheEnabled,
                                               timeToLive=d.timeToLive)
            self.tables[name] = _Table(fams)

    def deleteTable(self, name: bytes) -> None:  # noqa: N802
        with self.lock:
            table = self.tables.get(name)
            if table is None:
                raise T.IOError(f"TableNotFoundException: {name.decode(errors='replace')}")
            if table.enabled:
                raise T.IOError(f"TableNotDisabledException: {name.decode(errors='replace')}")
            del self.tables[name]

    def enableTable(self, name: bytes) -> None:  # noqa: N802
        with self.lock:
            self.tables[name].enabled = True

    def disableTable(self, name: bytes) -> None:  # noqa: N802
        with self.lock:
            self.tables[name].enabled = False

    def isTableEnabled(self, name: bytes) -> bool:  # noqa: N802
        with self.lock:
            return name in self.tables and self.tables[name].enabled

    def getColumnDescriptors(self, name: bytes) -> dict[bytes, Any]:  # noqa: N802
        with self.lock:
            return {d.name: d for d in self._table(name).families.values()}

    def getTableRegions(self, name: bytes) -> list[Any]:  # noqa: N802
        with self.lock:
            self._table(name)
            return [T.TRegionInfo(startKey=b"", endKey=b"", id=1, name=name + b",,1",
                                  version=1, serverName=b"localhost", port=0)]

    # -- mutations ----------------------------------------------------------------------------
    def mutateRow(self, table, row, mutations, attributes) -> None:  # noqa: N802, ANN001
        self.mutateRowsTs(table, [T.BatchMutation(row, mutations)], None, attributes)

    def mutateRowTs(self, table, row, mutations, ts, attributes) -> None:  # noqa: N802, ANN001
        self.mutateRowsTs(table, [T.BatchMutation(row, mutations)], ts, attributes)

    def mutateRows(self, table, batches, attributes) -> None:  # noqa: N802, ANN001
        self.mutateRowsTs(table, batches, None, attributes)

    def mutateRowsTs(self, table, batches, ts, attributes) -> None:  # noqa: N802, ANN001
        stamp = _now_ms() if ts is None else ts
        with self.lock:
            t = self._table(table)
            # HBase applies the deletes of a call before its puts
            for b in batches:
                for m in b.mutations:
                    if m.isDelete:
                        t.delete(b.row, m.column, stamp)
            for b in batches:
                for m in b.mutations:
                    if not m.isDelete:
                        # a put to "cf" writes the empty qualifier, as HBase does
                        column = m.column if b":" in m.column else m.column + b":"
                        t.put(b.row, column, m.value or b"", stamp)

    def deleteAll(self, table, row, column, attributes) -> None:  # noqa: N802, ANN001
        self.deleteAllTs(table, row, column, _now_ms(), attributes)

    def deleteAllTs(self, table, row, column, ts, attributes) -> None:  # noqa: N802, ANN001
        with self.lock:
            self._table(table).delete(row, column, ts)

    def deleteAllRow(self, table, row, attributes) -> None:  # noqa: N802, ANN001
        self.deleteAllRowTs(table, row, _now_ms(), attributes)

    def deleteAllRowTs(self, table, row, ts, attributes) -> None:  # noqa: N802, ANN001
        with self.lock:
            self._table(table).delete(row, None, ts)

    # -- reads --------------------------------------------------------------------------------
    @staticmethod
    def _result(row: bytes, cells: Cells, sort: bool = False) -> Any:
        if sort:
            return T.TRowResult(row=row, sortedColumns=[
                T.TColumn(c, T.TCell(vs[0][1], vs[0][0])) for c, vs in sorted(cells.items())])
        return T.TRowResult(row=row, columns={c: T.TCell(vs[0][1], vs[0][0])
                                              for c, vs in cells.items()})

    def _rows(self, table, rows, columns, before) -> list[Any]:  # noqa: ANN001
        with self.lock:
            t = self._table(table)
            out = []
            for row in rows:
                cells = t.read(row, columns, before)
                if cells:
                    out.append(self._result(row, cells))
            return out

    def getRow(self, table, row, attributes):  # noqa: N802, ANN001, ANN201
        return self._rows(table, [row], None, None)

    def getRowWithColumns(self, table, row, columns, attributes):  # noqa: N802, ANN001, ANN201
        return self._rows(table, [row], columns, None)

    def getRowTs(self, table, row, ts, attributes):  # noqa: N802, ANN001, ANN201
        return self._rows(table, [row], None, ts)

    def getRowWithColumnsTs(self, table, row, columns, ts, attributes):  # noqa: N802, ANN001, ANN201
        return self._rows(table, [row], columns, ts)

    def getRows(self, table, rows, attributes):  # noqa: N802, ANN001, ANN201
        return self._rows(table, rows, None, None)

    def getRowsWithColumns(self, table, rows, columns, attributes):  # noqa: N802, ANN001, ANN201
        return self._rows(table, rows, columns, None)

    def getRowsTs(self, table, rows, ts, attributes):  # noqa: N802, ANN001, ANN201
        return self._rows(table, rows, None, ts)

    def getRowsWithColumnsTs(self, table, rows, columns, ts, attributes):  # noqa: N802, ANN001, ANN201
        return self._rows(table, rows, columns, ts)

    def get(self, table, row, column, attributes):  # noqa: ANN001, ANN201
        return self.getVerTs(table, row, column, None, 1, attributes)

    def getVer(self, table, row, column, versions, attributes):  # noqa: N802, ANN001, ANN201
        return self.getVerTs(table, row, column, None, versions, attributes)

    def getVerTs(self, table, row, column, ts, versions, attributes):  # noqa: N802, ANN001, ANN201
        with self.lock:
            cells = self._table(table).read(row, [column], ts, versions)
            return [T.TCell(v, t) for vs in cells.values() for t, v in vs]

    # -- scanners -----------------------------------------------------------------------------
    def scannerOpenWithScan(self, table, scan, attributes):  # noqa: N802, ANN001, ANN201
        if scan.filterString:
            raise T.IOError("filter strings are not implemented by the HBase Thrift test server")
        return self._open(table, scan.startRow, scan.stopRow, scan.columns, scan.timestamp,
                          bool(scan.sortColumns), bool(scan.reversed))

    def scannerOpen(self, table, start, columns, attributes):  # noqa: N802, ANN001, ANN201
        return self._open(table, start, None, columns, None)

    def scannerOpenTs(self, table, start, columns, ts, attributes):  # noqa: N802, ANN001, ANN201
        return self._open(table, start, None, columns, ts)

    def scannerOpenWithStop(self, table, start, stop, columns, attributes):  # noqa: N802, ANN001, ANN201
        return self._open(table, start, stop, columns, None)

    def scannerOpenWithStopTs(self, table, start, stop, columns, ts, attributes):  # noqa: N802, ANN001, ANN201
        return self._open(table, start, stop, columns, ts)

    def scannerOpenWithPrefix(self, table, prefix, columns, attributes):  # noqa: N802, ANN001, ANN201
        return self._open(table, prefix, None, columns, None, prefix=prefix)

    def _open(self, table, start, stop, columns, ts, sort=False, reverse=False,  # noqa: ANN001
              prefix=None) -> int:  # noqa: ANN001
        with self.lock:
            t = self._table(table)
            keys = t.sorted_keys()
            if reverse:  # start is the highest row (inclusive), stop the lowest (exclusive)
                hi = len(keys) if not start else bisect.bisect_right(keys, start)
                lo = 0 if not stop else bisect.bisect_right(keys, stop)
                chosen = keys[lo:hi][::-1]
            else:
                lo = 0 if not start else bisect.bisect_left(keys, start)
                hi = len(keys) if not stop else bisect.bisect_left(keys, stop)
                chosen = keys[lo:hi]
            if prefix:
                chosen = [k for k in chosen if k.startswith(prefix)]
            sid = self.next_scanner
            self.next_scanner += 1
            self.scanners[sid] = self._scan(t, chosen, columns, ts, sort)
            return sid

    def _scan(self, t: _Table, keys: list[bytes], columns, ts, sort) -> Iterator[Any]:  # noqa: ANN001
        for key in keys:
            with self.lock:
                cells = t.read(key, columns, ts)
            if cells:
                yield self._result(key, cells, sort)

    def scannerGetList(self, sid, n):  # noqa: N802, ANN001, ANN201
        it = self.scanners.get(sid)
        if it is None:
            raise T.IllegalArgument(f"no scanner {sid}")
        out = []
        for item in it:
            out.append(item)
            if len(out) >= n:
                break
        return out

    def scannerGet(self, sid):  # noqa: N802, ANN001, ANN201
        return self.scannerGetList(sid, 1)

    def scannerClose(self, sid) -> None:  # noqa: N802, ANN001
        if self.scanners.pop(sid, None) is None:
            raise T.IllegalArgument(f"no scanner {sid}")


def serve(host: str, port: int) -> None:
    from thriftpy2.rpc import make_server

    # Millions of cells are millions of small lists and tuples that live as long as the
    # server: the cyclic collector would scan them again and again (a third of the server's
    # time in the benchmarks), and the tables hold no cycles for it to free.
    gc.disable()
    server = make_server(T.Hbase, HBaseHandler(), host, port, client_timeout=None)
    print(f"hbase thrift test server listening on {host}:{port}", flush=True)
    server.serve()


class HBaseThriftTestServer:
    """Runs the test server in a subprocess on a free port (its own process: its Python work
    does not compete with the tests' for the GIL)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.proc: subprocess.Popen | None = None

    def start(self) -> HBaseThriftTestServer:
        from tests.servers.common import free_port, wait_until

        self.port = free_port()
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.servers.hbase_thrift", "--host", self.host,
             "--port", str(self.port), "--parent-pid", str(os.getpid())],
            cwd=root, stdout=subprocess.DEVNULL)

        def accepting() -> bool:
            with socket.create_connection((self.host, self.port), timeout=1):
                return True
        wait_until(accepting, 30, "the HBase Thrift test server", self.proc)
        return self

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self) -> None:
        from tests.servers.common import stop_server

        stop_server(self.proc, "")
        self.proc = None


@dataclass
class HBaseService:
    """Where the tests find an HBase Thrift server (``cluster``: the
    :class:`tests.servers.hbase.ThrowawayHBase` behind it, when the tests started a real one:
    fault tests kill and restart it)."""

    host: str
    port: int
    cluster: Any = None


def from_env() -> HBaseService | None:
    """``HUB_TEST_HBASE=host:port`` (docker-compose's HBase Thrift server), if set."""
    spec = os.environ.get("HUB_TEST_HBASE")
    if not spec:
        return None
    host, _, port = spec.rpartition(":")
    return HBaseService(host or "127.0.0.1", int(port))


def real_hbase() -> bool:
    """The tests start a real HBase (tests/servers/hbase.py) unless ``HUB_STAND_INS=1`` asks
    for this test server (:func:`tests.servers.common.stand_ins`)."""
    from tests.servers.common import stand_ins

    return not stand_ins()


class _TestServerOwner:
    def __init__(self) -> None:
        self.server = HBaseThriftTestServer()

    def start(self) -> HBaseService:
        self.server.start()
        return HBaseService(self.server.host, self.server.port)

    def stop(self) -> None:
        self.server.stop()


def shared() -> HBaseService:
    """One server per test process (``HUB_TEST_HBASE``'s; else a real HBase, or this test
    server with ``HUB_STAND_INS=1``; stopped at exit): the integration fixture and the
    conformance cases use it."""
    from tests.servers.common import shared_server

    if real_hbase():
        from tests.servers.hbase import ThrowawayHBase

        return shared_server("hbase", from_env, ThrowawayHBase)
    return shared_server("hbase", from_env, _TestServerOwner)


def _exit_with_parent(pid: int) -> None:
    def watch() -> None:
        while True:
            try:
                os.kill(pid, 0)
            except OSError:
                os._exit(0)
            time.sleep(1)
    threading.Thread(target=watch, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9090)
    parser.add_argument("--parent-pid", type=int, default=0)
    args = parser.parse_args()
    if args.parent_pid:
        _exit_with_parent(args.parent_pid)
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
