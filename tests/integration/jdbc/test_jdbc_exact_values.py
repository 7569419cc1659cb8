"""Every MySQL value, end to end from a MariaDB table (``hub run``, snapshot), into PostgreSQL
and into MariaDB: held exactly, or mapped as the jdbc sink page documents, or refused with one
line naming table, key and column (issue 14).

The source table holds the edge values of each MySQL type; the test compares each target
column with what the MariaDB client reads from the source, column by column, so that a
failure names the column.
"""
from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import numpy as np
import pytest

from tests.integration.jdbc.databases import create_database
from tests.integration.mysql.helpers import new_database
from tests.killing import hub, run_to_end

pytestmark = [pytest.mark.integration, pytest.mark.jdbc]

COLUMNS = """
  id INT PRIMARY KEY, biu BIGINT UNSIGNED, d DECIMAL(65,30), f FLOAT, dbl DOUBLE,
  b1 BIT(1), b64 BIT(64), c CHAR(10), vc VARCHAR(20), tx TEXT, bn BINARY(4),
  dte DATE, tm TIME(6), dt6 DATETIME(6), ts3 TIMESTAMP(3) NULL, yr YEAR,
  js JSON, en ENUM('a','b c'), st SET('x','y','z'), geo GEOMETRY
"""
#: (id, biu, d, f, dbl, b1, b64, c, vc, tx, bn, dte, tm, dt6, ts3, yr, js, en, st, geo)
ROWS = [
    "(1, 18446744073709551615, "
    "'-99999999999999999999999999999999999.999999999999999999999999999999', "
    "-3.40282e38, -1.7976931348623157e308, b'1', b'1000000000000000000000000000000000000000000000000000000000000001', "
    "'ab', 'trailing  ', 'tab\t quote '' back \\\\ 😀', UNHEX('01000000'), '1000-01-01', "
    "'-838:59:59.000000', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999', 2155, "
    "'{\"b\": 1,  \"a\": [1, 2.50], \"a\": 3}', 'b c', 'x,z', ST_GeomFromText('POINT(1 2)'))",
    "(2, 0, 0, 1.17549e-38, 2.2250738585072014e-308, b'0', b'0', '', '', '', UNHEX('00'), "
    "'0000-00-00', '838:59:59', '0000-00-00 00:00:00', NULL, 0, '[]', 'a', '', NULL)",
    "(3, 1, 0.5, 0.5, 0.1, NULL, NULL, ' x', 'y ', NULL, NULL, NULL, '-00:00:01.5', NULL, "
    "NULL, 1901, '{ }', NULL, 'y', NULL)",
    "(4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, '25:00:00.000001', "
    "NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    "(5, 9223372036854775808, '0.000000000000000000000000000001', 1.4e-45, "
    "4.9406564584124654e-324, NULL, NULL, NULL, NULL, NULL, NULL, '9999-12-31', "
    "'-00:00:00.000001', '0001-01-01 00:00:00.000001', '1970-01-01 00:00:01.001', NULL, "
    "'{\"n\": 1e400, \"s\": \"\\\\u00e9\"}', NULL, 'x,y,z', NULL)",
]
NAMES = [c.split()[0] for c in COLUMNS.replace("\n", " ").split(", ") if c.strip()]


def source_table(mysql_server, extra: list[str] = ()) -> tuple[str, dict[int, dict]]:
    """A MariaDB database with table ``types``; returns its name and the rows as the
    MariaDB client reads them (the reference), by id."""
    db = new_database(mysql_server)
    conn = mysql_server.connect()
    with conn.cursor() as cur:
        cur.execute("SET SESSION sql_mode = ''")  # zero dates
        cur.execute("SET SESSION time_zone = '+00:00'")  # TIMESTAMP literals and reads: UTC
        cur.execute(f"CREATE TABLE {db}.types ({COLUMNS})")
        for row in ROWS + list(extra):
            cur.execute(f"INSERT INTO {db}.types VALUES {row}")
        cur.execute(f"SELECT {', '.join(NAMES[:-1])}, ST_AsWKB(geo) FROM {db}.types")
        ref = {r[0]: dict(zip(NAMES, r)) for r in cur.fetchall()}
    conn.close()
    return db, ref


def run_snapshot(work, mysql_server, db: str, url: str, sink: str = "",
                 errors: str = "") -> str:
    """A pipeline file in folder ``work``: the snapshot of ``db`` into ``url``."""
    work.mkdir(exist_ok=True)
    path = work / "pipeline.toml"
    path.write_text(mysql_server.pipeline_toml("exact", work / "state", db,
                                               startup_mode="initial-only")
                    + f'[sink]\ntype = "jdbc"\nurl = "{url}"\n{sink}{errors}')
    return str(path)


def as_wkb(source_geometry: bytes | None) -> bytes | None:
    return None if source_geometry is None else bytes(source_geometry)


def source_value(src: dict, name: str):
    """What the target should hold for a source value: a zero date is NULL (the source's
    ``zero-date = "null"``), the rest as the MariaDB client reads it."""
    v = src[name]
    return None if isinstance(v, str) and v.startswith("0000-00-00") else v


def float32(v):
    return None if v is None else float(np.float32(v))


def test_every_mysql_value_into_postgresql(mysql_server, postgres_server, tmp_path, request):
    db, ref = source_table(mysql_server)
    pg = create_database("postgres", postgres_server, request.node.nodeid)
    run_to_end(run_snapshot(tmp_path / "a", mysql_server, db, pg.url, 'json-type = "json"\n'))
    cols = ", ".join(f"{n}::text" if n == "js" else n for n in NAMES)
    got = {r[0]: dict(zip(NAMES, r)) for r in pg.query(f"SELECT {cols} FROM types")}
    assert set(got) == set(ref)
    for k, src in ref.items():
        row = got[k]
        assert float32(row["f"]) == float32(src["f"]), f"row {k} column f"
        for name in ("biu", "d", "dbl", "vc", "tx", "dte", "dt6", "yr", "en"):
            want = source_value(src, name)
            assert row[name] == want, f"row {k} column {name}: {row[name]!r} != {want!r}"
        # CHAR without PostgreSQL's blank padding (a varchar(n) column)
        assert row["c"] == src["c"], f"row {k} column c: {row['c']!r} != {src['c']!r}"
        # TIME: negative, over 24 hours, fractions (an interval column)
        assert row["tm"] == src["tm"], f"row {k} column tm: {row['tm']!r} != {src['tm']!r}"
        # JSON text as written (json-type = "json"): duplicate keys, spaces, 2.50
        assert row["js"] == src["js"], f"row {k} column js: {row['js']!r} != {src['js']!r}"
        # BIT(1) -> boolean, BIT(64) -> its 8 bytes, big-endian as MySQL shows them
        assert row["b1"] == (None if src["b1"] is None else src["b1"] == b"\x01")
        assert (None if row["b64"] is None else bytes(row["b64"])) == src["b64"]
        assert (None if row["bn"] is None else bytes(row["bn"])) == src["bn"]  # zero bytes kept
        assert row["st"] == (None if src["st"] is None else sorted(src["st"]) if isinstance(
            src["st"], set) else [s for s in src["st"].split(",") if s])
        # TIMESTAMP: the instant (read in UTC above)
        want_ts = src["ts3"] and src["ts3"].replace(tzinfo=dt.timezone.utc)
        assert row["ts3"] == want_ts
        # GEOMETRY: the WKB (ST_AsWKB) in bytea (SRID 0 here: EWKB otherwise, see the page)
        assert (None if row["geo"] is None else bytes(row["geo"])) == as_wkb(src["geo"])
    types = dict(pg.query("SELECT column_name, data_type FROM information_schema.columns "
                          "WHERE table_name = 'types'"))
    assert types["tm"] == "interval" and types["c"] == "character varying"
    assert types["js"] == "json"
    assert got[1]["tm"] == -dt.timedelta(hours=838, minutes=59, seconds=59)
    assert got[4]["tm"] == dt.timedelta(hours=25, microseconds=1)
    assert got[1]["d"] == Decimal("-99999999999999999999999999999999999.999999999999999999999999999999")


def test_a_nul_character_into_postgresql_names_table_key_and_column_or_goes_to_dead_letters(
        mysql_server, postgres_server, tmp_path, request):
    nul = "(9, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'a\\0b', NULL, NULL, NULL, NULL, " \
          "NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
    db, ref = source_table(mysql_server, [nul])
    pg = create_database("postgres", postgres_server, request.node.nodeid)
    p = hub("run", run_snapshot(tmp_path / "a", mysql_server, db, pg.url), "--no-progress")
    _, err = p.communicate(timeout=120)
    assert p.returncode != 0
    line = next((x for x in err.splitlines() if "refused" in x), None)
    assert line is not None, err
    assert "types" in line and "'id': 9" in line and "column vc" in line, line
    # tolerated: the row goes to the dead letters, every other row is written
    pg2 = create_database("postgres", postgres_server, request.node.nodeid + "-dlq")
    dlq = tmp_path / "dlq"
    run_to_end(run_snapshot(tmp_path / "b", mysql_server, db, pg2.url,
                            errors=f'[errors]\ntolerance = "all"\ndead-letter-path = "{dlq}"\n'))
    assert {r[0] for r in pg2.query("SELECT id FROM types")} == set(ref) - {9}
    letters = [json.loads(x) for f in dlq.rglob("*.jsonl") for x in f.read_text().splitlines()]
    assert len(letters) == 1 and letters[0]["record"]["id"] == 9
    assert "column vc" in letters[0]["error"]


def test_every_mysql_value_into_mariadb(mysql_server, tmp_path, request):
    nul = "(9, NULL, NULL, NULL, NULL, NULL, NULL, 'a\\0', 'a\\0b', 'x\\0\\0', NULL, NULL, " \
          "NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)"
    db, ref = source_table(mysql_server, [nul])
    assert ref[9]["vc"] == "a\x00b"  # MariaDB holds NUL characters: so does the target
    my = create_database("mariadb", mysql_server, request.node.nodeid)
    run_to_end(run_snapshot(tmp_path / "a", mysql_server, db, my.url))
    got = {r[0]: dict(zip(NAMES, r)) for r in my.query(f"SELECT {', '.join(NAMES)} FROM types")}
    assert set(got) == set(ref)
    for k, src in ref.items():
        row = got[k]
        assert float32(row["f"]) == float32(src["f"]), f"row {k} column f"
        for name in ("biu", "d", "dbl", "c", "vc", "tx", "bn", "dte", "tm", "dt6", "ts3", "yr",
                     "js", "en", "b64"):
            want = source_value(src, name)
            assert row[name] == want, f"row {k} column {name}: {row[name]!r} != {want!r}"
        # BIT(1) -> BOOLEAN (TINYINT 0/1); SET -> a JSON array of its members
        assert row["b1"] == (None if src["b1"] is None else int(src["b1"] == b"\x01"))
        want_set = None if src["st"] is None else sorted(src["st"]) if isinstance(
            src["st"], set) else [s for s in src["st"].split(",") if s]
        assert (None if row["st"] is None else json.loads(row["st"])) == want_set
        # GEOMETRY: the WKB in a LONGBLOB (SRID 0 here: EWKB otherwise, see the page)
        assert row["geo"] == src["geo"]
