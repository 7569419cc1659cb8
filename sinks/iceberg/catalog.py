"""The Iceberg catalog of the sink (sql, rest, hive through pyiceberg) and the one translation
of pyiceberg's and its clients' errors into transient / terminal ones."""
from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Iterator
from typing import Any

from runtime.errors import ConfigError, HubError, MissingExtraError, TerminalError, TransientError
from sinks.iceberg.config import IcebergSinkConfig

log = logging.getLogger(__name__)

_PASSWORD = re.compile(r"(://[^:/@]+:)[^@]*@")
#: Held while a catalog is made and while a namespace or table is created: the writers that
#: stage data files and the committer do both, and pyiceberg's sql catalog creates its own
#: tables and namespace rows without a guard against another client doing it at once.
SETUP = threading.RLock()


def masked(uri: str) -> str:
    """``uri`` with its password hidden (secrets never appear in messages)."""
    return _PASSWORD.sub(r"\1***@", uri)


def load(config: IcebergSinkConfig) -> Any:
    """A pyiceberg catalog for ``config`` (not connected before first use for sql)."""
    try:
        from pyiceberg.catalog import load_catalog
    except ImportError:
        raise MissingExtraError("pyiceberg", "iceberg") from None
    props = {"type": config.catalog_type, "uri": config.catalog_url(),
             "warehouse": config.warehouse_url(), **config.catalog_properties}
    if config.catalog_type == "sql" and props["uri"].startswith("sqlite:///"):
        os.makedirs(os.path.dirname(props["uri"][len("sqlite:///"):]) or ".", exist_ok=True)
    if config.catalog_type == "sql" and props["uri"].startswith("postgresql://"):
        # SQLAlchemy's default PostgreSQL driver is psycopg2; the hub uses psycopg 3
        props["uri"] = "postgresql+psycopg://" + props["uri"][len("postgresql://"):]
    with translate(f"catalog {masked(props['uri'])}"), SETUP:
        return load_catalog(config.catalog_name, **props)


@contextlib.contextmanager
def translate(what: str) -> Iterator[None]:
    """Raise the errors of the block as hub errors: transient for a conflict or an outage
    (the runtime retries the whole commit, which starts again from the table's current
    snapshot), terminal for everything else.  ``what`` names the table or catalog."""
    try:
        yield
    except HubError:
        raise
    except Exception as exc:  # noqa: BLE001 - classified below, never dropped
        transient = _is_transient(exc)
        cls = TransientError if transient else TerminalError
        text = masked(str(exc).strip().splitlines()[0] if str(exc).strip() else "")
        raise cls(f"iceberg: {what}: {type(exc).__name__}: {text}") from exc


def _is_transient(exc: BaseException) -> bool:
    from pyiceberg import exceptions as ex

    if isinstance(exc, (ex.CommitFailedException, ex.CommitStateUnknownException,
                        ex.ServerError, ex.ServiceUnavailableError,
                        ex.TableAlreadyExistsError, ex.NamespaceAlreadyExistsError)):
        # a concurrent commit or creation; a commit of unknown outcome is safe to retry:
        # the retry finds a checkpoint that did commit in the snapshot summaries
        return True
    if isinstance(exc, (PermissionError, FileNotFoundError, IsADirectoryError)):
        return False
    if isinstance(exc, (OSError, TimeoutError)):
        return True
    name = type(exc).__module__ + "." + type(exc).__name__
    if name.startswith("sqlalchemy.") and type(exc).__name__ in ("OperationalError",
                                                                 "InterfaceError",
                                                                 "DisconnectionError",
                                                                 "TimeoutError"):
        return True
    if name.startswith(("requests.", "urllib3.")) and "Connection" in type(exc).__name__:
        return True
    if name.startswith("thrift.") and "Transport" in type(exc).__name__:
        return True
    return False


def check_reachable(config: IcebergSinkConfig) -> None:
    """Fail fast when the catalog can't be used (``Sink.check``)."""
    catalog = load(config)
    with translate(f"catalog {masked(config.catalog_url())}"):
        catalog.list_namespaces()
    if config.catalog_type == "sql" and config.catalog_url().startswith("sqlite:") \
            and "://" in config.warehouse and not config.warehouse.startswith("file://"):
        raise ConfigError("a SQLite catalog keeps its file next to a local warehouse; with a "
                          f"remote warehouse ({config.warehouse}) give catalog-uri",
                          key="catalog-uri")
