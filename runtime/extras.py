"""Which optional dependency (pyproject extra) each plugin needs, and the command installing it.

Each connector's third-party client is an extra of the ``cdc-hub`` distribution
(``pip install 'cdc-hub[kafka]'``).  :data:`NEEDS` says which modules a plugin imports and
which extra provides them, so that a missing client is found when the plugin is loaded (by
``hub validate`` too), not at the first connection.  :func:`install_command` is the one command
to run, for the way the hub itself was installed: from a checkout (``pip install -e``), from a
local folder or wheel, or from a package index.

Imports nothing of ours: :mod:`runtime.errors` uses it.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote, urlsplit

DISTRIBUTION = "cdc-hub"


class Needs(NamedTuple):
    """The extra a plugin needs and the top-level modules it imports from it."""

    extra: str
    modules: tuple[str, ...]


#: (kind, entry-point name) -> what it needs.  Plugins not listed need no extra.
NEEDS: dict[tuple[str, str], Needs] = {
    ("source", "mysql"): Needs("mysql", ("pymysql",)),
    ("source", "kafka"): Needs("kafka", ("confluent_kafka",)),
    ("sink", "kafka"): Needs("kafka", ("confluent_kafka",)),
    # The extra installs both drivers; the URL picks one.
    ("sink", "jdbc"): Needs("jdbc", ("psycopg", "pymysql")),
    ("sink", "elasticsearch"): Needs("elasticsearch", ("elasticsearch",)),
    ("sink", "hbase"): Needs("hbase", ("happybase", "thriftpy2")),
    ("sink", "hdfs"): Needs("hdfs", ("hdfs",)),
    ("sink", "delta"): Needs("delta", ("deltalake",)),
    ("sink", "iceberg"): Needs("iceberg", ("pyiceberg",)),
    ("format", "avro"): Needs("kafka", ("fastavro",)),
}

#: A module some plugin imports -> the extra installing it (for a missing module found while
#: importing a plugin not in :data:`NEEDS`).
EXTRA_OF_MODULE: dict[str, str] = {
    "pymysql": "mysql", "psycopg": "jdbc",
    "confluent_kafka": "kafka", "fastavro": "kafka", "elasticsearch": "elasticsearch",
    "happybase": "hbase", "thriftpy2": "hbase", "hdfs": "hdfs", "deltalake": "delta",
    "pyiceberg": "iceberg", "hive_metastore": "metastore",
}


def install_command(extra: str) -> str:
    """The shell command installing ``extra`` into the Python environment running now.

    From a checkout installed with ``pip install -e .`` it is ``.venv/bin/pip install -e
    '.[extra]'`` (paths relative to the working directory when inside it); from a package
    index ``pip install 'cdc-hub[extra]'``.  The pip named is the running interpreter's, so the
    command installs where the hub runs even when its environment is not activated.
    """
    source = _installed_from()
    if source is None:
        target = shlex.quote(f"{DISTRIBUTION}[{extra}]")
    else:
        path, editable = source
        target = ("-e " if editable else "") + shlex.quote(f"{_short(path)}[{extra}]")
    return f"{_pip()} install {target}"


def _installed_from() -> tuple[str, bool] | None:
    """(local folder or file, editable) the hub was installed from; None for an index."""
    root = Path(__file__).resolve().parent.parent
    if (root / "pyproject.toml").is_file():
        # Our modules live in a checkout (an editable install, or the checkout on sys.path):
        # install the extra from it, editable, so it stays the code that runs.
        return str(root), True
    try:
        info = json.loads(distribution(DISTRIBUTION).read_text("direct_url.json") or "null")
    except (PackageNotFoundError, ValueError):  # PEP 610 record absent or unreadable
        return None
    if not isinstance(info, dict):
        return None
    url = urlsplit(str(info.get("url", "")))
    path = unquote(url.path)
    if url.scheme != "file" or not os.path.exists(path):
        return None  # installed from a VCS URL or a folder since removed: use the index name
    return path, False


def _pip() -> str:
    pip = os.path.join(os.path.dirname(sys.executable), "pip")
    if not os.path.isfile(pip):
        return f"{shlex.quote(_short(sys.executable))} -m pip"
    on_path = shutil.which("pip")
    if on_path and os.path.realpath(on_path) == os.path.realpath(pip):
        return "pip"
    return shlex.quote(_short(pip))


def _short(path: str) -> str:
    """``path`` relative to the working directory when inside it, else absolute."""
    path = os.path.abspath(path)
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    if rel == ".":
        return "."
    return path if rel.startswith("..") else rel
