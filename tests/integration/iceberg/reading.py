"""Reading Iceberg tables the sink wrote, with readers that are not ours: pyiceberg (the
format's own package), Polars ``scan_iceberg`` and DuckDB."""
from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa


def catalog(warehouse: str | Path, uri: str | None = None, name: str = "hub"):
    """The sql catalog of a warehouse (its default SQLite file, or ``uri``)."""
    from pyiceberg.catalog.sql import SqlCatalog

    warehouse = os.path.abspath(warehouse)
    return SqlCatalog(name, uri=uri or f"sqlite:///{warehouse}/catalog.db",
                      warehouse=f"file://{warehouse}")


def read_tables(warehouse: str | Path, uri: str | None = None) -> dict[str, pa.Table]:
    """``{"db.table": rows}`` of every table of the warehouse's catalog, read with pyiceberg;
    empty when the catalog does not exist yet."""
    if uri is None and not os.path.exists(os.path.join(warehouse, "catalog.db")):
        return {}
    cat = catalog(warehouse, uri)
    out = {}
    for ns in cat.list_namespaces():
        for ident in cat.list_tables(ns):
            out[".".join(ident)] = cat.load_table(ident).scan().to_arrow()
    return out


def read_polars(table) -> pa.Table:
    """The table's rows through Polars ``scan_iceberg`` (its own reader of the metadata)."""
    import polars as pl

    return pl.scan_iceberg(table.metadata_location).collect().to_arrow()
