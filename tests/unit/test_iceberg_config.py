"""Options of the iceberg sink: names of tables, the default catalog, secrets kept out of
messages."""
from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from runtime.errors import ConfigError
from sinks.iceberg.catalog import masked
from sinks.iceberg.config import IcebergSinkConfig


def config(**options) -> IcebergSinkConfig:
    return IcebergSinkConfig.model_validate({"warehouse": "/tmp/wh", **options})


def test_identifiers_from_templates():
    assert config().identifier("shop.orders") == ("shop", "orders")
    assert config(namespace="lake.{db}", table="{db}_{table}").identifier("shop.orders") == (
        "lake", "shop", "shop_orders")
    assert config().identifier('shop."my.orders"') == ("shop", "my.orders")
    with pytest.raises(ConfigError, match="no valid Iceberg name"):
        config(namespace="{db}").identifier("orders")  # no db: an empty namespace


def test_unknown_placeholder_and_missing_uri_are_refused():
    with pytest.raises(ValidationError, match=r"unknown placeholder \{schema\}"):
        config(table="{schema}")
    with pytest.raises(ValidationError, match="a rest catalog needs its URI"):
        config(**{"catalog-type": "rest"})


def test_default_catalog_is_a_sqlite_file_in_the_warehouse():
    c = config(warehouse="rel/wh")
    assert c.catalog_url() == "sqlite:///" + os.path.abspath("rel/wh") + "/catalog.db"
    assert c.warehouse_url() == "file://" + os.path.abspath("rel/wh")
    assert config(warehouse="s3://b/wh/").warehouse_url() == "s3://b/wh"


def test_passwords_are_masked():
    assert masked("postgresql+psycopg://hub:s3cret@db:5432/cat") == \
        "postgresql+psycopg://hub:***@db:5432/cat"
    assert masked("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_one_translation_of_client_errors():
    from pyiceberg.exceptions import CommitFailedException, NoSuchNamespaceError

    from runtime.errors import TerminalError, TransientError
    from sinks.iceberg.catalog import translate

    def raised(exc):
        try:
            with translate("table shop.orders"):
                raise exc
        except Exception as out:  # noqa: BLE001
            return out

    conflict = raised(CommitFailedException("branch main has changed"))
    assert isinstance(conflict, TransientError)
    assert str(conflict) == ("iceberg: table shop.orders: CommitFailedException: branch main "
                             "has changed")
    assert isinstance(raised(ConnectionRefusedError("refused")), TransientError)
    assert isinstance(raised(PermissionError("denied")), TerminalError)
    assert isinstance(raised(NoSuchNamespaceError("x")), TerminalError)
    leaked = raised(OSError("can't reach postgresql+psycopg://hub:s3cret@db/cat"))
    assert "s3cret" not in str(leaked) and "***" in str(leaked)
