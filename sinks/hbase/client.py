"""The HBase Thrift connection (happybase): tables created on demand, versioned mutations
sent with retries and reconnects."""
from __future__ import annotations

import logging
import socket
import time
from typing import Any

from runtime.errors import ConfigError, MissingExtraError, TerminalError, TransientError
from sinks.hbase.config import HBaseSinkConfig

try:
    import happybase
    from thriftpy2.transport import TTransportException

    import Hbase_thrift  # type: ignore[import-not-found]  # loaded by happybase
except ModuleNotFoundError as exc:  # pragma: no cover - depends on the install
    raise MissingExtraError("happybase", "hbase") from exc

log = logging.getLogger(__name__)

BatchMutation = Hbase_thrift.BatchMutation
Mutation = Hbase_thrift.Mutation
_RETRYABLE = (TTransportException, socket.error, EOFError, Hbase_thrift.IOError)


class HBaseClient:
    """One Thrift connection, opened on first use.  Thread-confined."""

    def __init__(self, config: HBaseSinkConfig):
        self.config = config
        self._conn: Any = None
        self._ready: set[str] = set()

    def connection(self) -> Any:
        if self._conn is None:
            cfg = self.config
            self._conn = happybase.Connection(
                cfg.host, cfg.port, timeout=int(cfg.timeout * 1000), autoconnect=False,
                transport=cfg.transport, protocol=cfg.protocol)
            self._conn.open()
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - the socket may already be gone
                log.debug("hbase: error while closing the connection (ignored)", exc_info=True)
            self._conn = None

    def ensure_table(self, name: str, families: list[str]) -> None:
        """Create ``name`` with ``families`` when missing (``create-table``); fail with one
        line when it lacks one of them (Thrift1 can't add families to a table)."""
        if name in self._ready:
            return
        have = self._call(lambda c: c.client.getColumnDescriptors(name.encode())
                          if name.encode() in c.client.getTableNames() else None,
                          f"describing table {name}")
        if have is None:
            if not self.config.create_table:
                raise ConfigError(f"hbase: table {name!r} does not exist and create-table is "
                                  "false", key="table")
            descriptors = {f: {"max_versions": self.config.max_versions} for f in families}
            try:
                self._call(lambda c: c.create_table(name, descriptors), f"creating table {name}")
                log.info("hbase: created table %s with families %s", name, ", ".join(families))
            except TransientError as exc:
                if "AlreadyExists" not in str(exc):
                    raise
        else:
            existing = {k.decode().rstrip(":") for k in have}
            missing = [f for f in families if f not in existing]
            if missing:
                raise ConfigError(f"hbase: table {name!r} has no column family "
                                  f"{missing[0]!r} (it has {', '.join(sorted(existing))}); "
                                  "add it in the HBase shell or change column-families",
                                  key="column-families")
        self._ready.add(name)

    def mutate(self, table: str, batches: list[Any], timestamp: int) -> None:
        """``mutateRowsTs``: every put and delete of ``batches`` at ``timestamp``."""
        name = table.encode()
        self._call(lambda c: c.client.mutateRowsTs(name, batches, timestamp, {}),
                   f"writing {len(batches)} rows to {table}")

    def _call(self, fn: Any, what: str) -> Any:
        delay = self.config.retry_backoff
        for attempt in range(self.config.max_retries + 1):
            try:
                return fn(self.connection())
            except Hbase_thrift.IllegalArgument as exc:
                raise TerminalError(f"hbase: {what}: {exc.message}") from None
            except Hbase_thrift.AlreadyExists as exc:
                raise TransientError(f"hbase: {what}: AlreadyExists: {exc.message}") from None
            except _RETRYABLE as exc:
                problem = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
                self.close()  # a broken transport can't be reused
            if attempt == self.config.max_retries:
                raise TransientError(f"hbase: {what} failed after {attempt} retries: {problem}")
            log.warning("hbase: %s: %s; retry in %.1fs", what, problem, delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
        raise AssertionError("unreachable")
