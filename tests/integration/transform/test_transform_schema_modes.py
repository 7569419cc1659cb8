"""Schema change behaviors against real servers: MariaDB DDL (add, drop, rename, truncate) on a
table streamed into PostgreSQL.  ``lenient`` (the default) loses nothing there; ``evolve`` with
the sink's ``exclude-schema-changes`` keeps what the excluded changes would have removed."""
from __future__ import annotations

import signal
import time

import pytest

from tests.integration.jdbc.databases import create_database
from tests.integration.mysql.helpers import new_database
from tests.killing import hub, latest_checkpoint

pytestmark = [pytest.mark.integration, pytest.mark.transform, pytest.mark.jdbc,
              pytest.mark.mysql]


def _sql(server, *statements: str) -> None:
    conn = server.connect()
    with conn.cursor() as cur:
        for s in statements:
            cur.execute(s)
    conn.commit()
    conn.close()


def _sync(mysql_server, target, path, state, statements: list[str], query: str,
          want: set) -> tuple[set, str]:
    """Run the pipeline of ``path``; once the table is at the target and a checkpoint has
    completed, run ``statements`` at the source, then wait up to 60 s for ``query`` at the
    target to give ``want`` and stop the pipeline (SIGTERM, which must end it cleanly): the
    rows the query gave last, and the run's stderr."""
    p = hub("run", str(path), "--no-progress")
    got: set = set()
    try:
        deadline = time.monotonic() + 60
        while not (target.visible("t") and latest_checkpoint(str(state)) > 1) \
                and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.2)
        _sql(mysql_server, *statements)
        while time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.3)
            try:
                got = set(target.query(query))
            except Exception:  # noqa: BLE001 - a column not there yet
                continue
            if got == want:
                break
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err[-2000:]
    return got, err


def _pipeline(mysql_server, postgres_server, tmp_path, request, name: str, columns: str,
              row: str, pipeline: str = "", sink: str = ""):
    """A source database with table ``t`` (``columns``, one row ``row``), an empty PostgreSQL
    target and the pipeline file between them (``pipeline``: lines for ``[pipeline]``,
    ``sink``: for ``[sink]``): (source database, target, pipeline file, state folder)."""
    src = new_database(mysql_server)
    _sql(mysql_server, f"CREATE TABLE {src}.t ({columns})", f"INSERT INTO {src}.t VALUES ({row})")
    target = create_database("postgres", postgres_server, request.node.nodeid)
    state = tmp_path / "state"
    path = tmp_path / "p.toml"
    text = mysql_server.pipeline_toml(name, state, src)
    if pipeline:
        text = text.replace("[checkpoint]", pipeline + "[checkpoint]", 1)
    path.write_text(text + f'[sink]\ntype = "jdbc"\nurl = "{target.url}"\n' + sink)
    return src, target, path, state


def test_lenient_keeps_dropped_and_renamed_columns(mysql_server, postgres_server, tmp_path,
                                                   request):
    # lenient is the default: the file does not name it
    src, target, path, state = _pipeline(
        mysql_server, postgres_server, tmp_path, request, "t-lenient",
        "id INT PRIMARY KEY, a INT, b VARCHAR(10)", "1, 10, 'x'")
    # q: added with a default the row that existed reads (nullable: later rows lack it)
    want = {(1, 10, "x", None, 7), (5, 50, "v", None, 8), (2, None, "y", None, None),
            (3, None, None, "z", None), (4, None, None, "w", None)}
    got, err = _sync(mysql_server, target, path, state, [
        f"ALTER TABLE {src}.t ADD COLUMN q INT NOT NULL DEFAULT 7",
        f"INSERT INTO {src}.t VALUES (5, 50, 'v', 8)",
        f"ALTER TABLE {src}.t DROP COLUMN q",
        f"ALTER TABLE {src}.t DROP COLUMN a",
        f"INSERT INTO {src}.t VALUES (2, 'y')",
        f"ALTER TABLE {src}.t CHANGE b c VARCHAR(10)",
        f"INSERT INTO {src}.t VALUES (3, 'z')",
        f"TRUNCATE TABLE {src}.t",
        f"INSERT INTO {src}.t VALUES (4, 'w')"], "SELECT id, a, b, c, q FROM t", want)
    # nothing lost: the dropped column and the old name stay, the truncate did not reach it
    assert got == want, err[-2000:]


def test_lenient_type_change_no_type_holds_goes_to_a_side_column(mysql_server, postgres_server,
                                                                 tmp_path, request):
    """INT -> VARCHAR (no type holds both): the INT column keeps its rows, the new values go
    to a_varchar, added at PostgreSQL by the same schema change a rename adds a column with;
    a widening (VARCHAR(10) -> VARCHAR(20)) of the side column stays in place."""
    src, target, path, state = _pipeline(mysql_server, postgres_server, tmp_path, request,
                                         "t-lenient-type", "id INT PRIMARY KEY, a INT", "1, 10")
    want = {(1, 10, None), (2, None, "x"), (3, None, "yyyyyyyyyyyyyyy")}
    got, err = _sync(mysql_server, target, path, state, [
        f"ALTER TABLE {src}.t MODIFY a VARCHAR(10)",
        f"INSERT INTO {src}.t VALUES (2, 'x')",
        f"ALTER TABLE {src}.t MODIFY a VARCHAR(20)",
        f"INSERT INTO {src}.t VALUES (3, 'yyyyyyyyyyyyyyy')"], "SELECT id, a, a_varchar FROM t",
        want)
    assert got == want, err[-2000:]


def test_evolve_with_excluded_drop_column_and_truncate(mysql_server, postgres_server, tmp_path,
                                                       request):
    """evolve passes the rename as a rename; the sink's exclude-schema-changes keeps the
    dropped column (NULL in later rows) and the rows a truncate would have removed."""
    src, target, path, state = _pipeline(
        mysql_server, postgres_server, tmp_path, request, "t-exclude",
        "id INT PRIMARY KEY, a INT, b VARCHAR(10)", "1, 10, 'x'",
        pipeline='schema-change-behavior = "evolve"\n',
        sink='exclude-schema-changes = ["drop.column", "truncate.table"]\n')
    want = {(1, 10, "x"), (2, None, "y"), (3, None, "z"), (4, None, "w")}
    got, err = _sync(mysql_server, target, path, state, [
        f"ALTER TABLE {src}.t DROP COLUMN a",
        f"INSERT INTO {src}.t VALUES (2, 'y')",
        f"ALTER TABLE {src}.t CHANGE b c VARCHAR(10)",
        f"INSERT INTO {src}.t VALUES (3, 'z')",
        f"TRUNCATE TABLE {src}.t",
        f"INSERT INTO {src}.t VALUES (4, 'w')"], "SELECT id, a, c FROM t", want)
    columns = {r[0] for r in target.query(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 't'")}
    assert got == want, err[-2000:]
    assert columns == {"id", "a", "c"}  # renamed (evolve), a kept (its drop excluded)
