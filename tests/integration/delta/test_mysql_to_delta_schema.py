"""MySQL/MariaDB -> Delta with schema changes in the binlog: an added column appears, a
widened one (INT -> BIGINT) is widened in the table, a dropped one stays (null in rows
written after the drop), and the table keeps equal to the source."""
from __future__ import annotations

import signal
import time

import pytest

pytest.importorskip("deltalake")
pytest.importorskip("polars")

from tests.integration.delta.helpers import read  # noqa: E402
from tests.integration.mysql.helpers import new_database  # noqa: E402
from tests.killing import hub  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.delta, pytest.mark.mysql]


def wait_for(check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = check()
            if got:
                return got
        except Exception:  # noqa: BLE001 - the table is not there yet
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.3)


@pytest.mark.parametrize("crash", [None, "delta-widened"])
def test_added_widened_and_dropped_columns_follow_the_source(tmp_path, mysql_server, crash):
    """``crash``: killed right after the table was rewritten with the wider type, before the
    checkpoint's commit: the restart finds it widened and commits the checkpoint once."""
    db = new_database(mysql_server)
    conn = mysql_server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {db}.t (id BIGINT PRIMARY KEY, name VARCHAR(20), qty INT)")
        cur.executemany(f"INSERT INTO {db}.t VALUES (%s, %s, %s)",
                        [(i, f"n{i}", i) for i in range(1, 21)])
    conn.commit()
    lake = tmp_path / "lake"
    path = tmp_path / "pipeline.toml"
    path.write_text(mysql_server.pipeline_toml("mysql-delta-ddl", tmp_path / "state", db, 1)
                    + f'[sink]\ntype = "delta"\npath = "{lake}"\n')
    uri = str(lake / db / "t")
    p = hub("run", str(path), "--no-progress", env={"HUB_CRASH_AT": crash} if crash else None)
    try:
        wait_for(lambda: len(read(uri)) == 20)
        with conn.cursor() as cur:
            cur.execute(f"ALTER TABLE {db}.t ADD COLUMN note VARCHAR(20)")
            cur.execute(f"INSERT INTO {db}.t VALUES (21, 'n21', 21, 'hello')")
            cur.execute(f"ALTER TABLE {db}.t MODIFY qty BIGINT")
            cur.execute(f"UPDATE {db}.t SET qty = 5000000000 WHERE id = 2")
            cur.execute(f"ALTER TABLE {db}.t DROP COLUMN name")
            cur.execute(f"INSERT INTO {db}.t (id, qty, note) VALUES (22, 22, 'late')")
            cur.execute(f"UPDATE {db}.t SET note = 'upd' WHERE id = 3")
        conn.commit()
        if crash:
            _, err = p.communicate(timeout=60)
            assert p.returncode == -signal.SIGKILL, f"crash point {crash} not reached: {err}"
            from deltalake import DeltaTable

            assert "widened qty" in str(DeltaTable(uri).history(1))
            p = hub("run", str(path), "--no-progress")

        def caught_up():
            rows = read(uri)
            return rows if 22 in rows and rows[3]["note"] == "upd" else None

        try:
            got = wait_for(caught_up)
        except AssertionError:
            p.send_signal(signal.SIGTERM)
            raise AssertionError(f"the table did not catch up: {p.communicate(timeout=60)[1]}")
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    from deltalake import DeltaTable

    types = {f.name: str(f.type) for f in DeltaTable(uri).schema().fields}
    assert types == {"id": 'PrimitiveType("long")', "name": 'PrimitiveType("string")',
                     "qty": 'PrimitiveType("long")', "note": 'PrimitiveType("string")'}
    assert got[2]["qty"] == 5_000_000_000 and got[21] == {
        "id": 21, "name": "n21", "qty": 21, "note": "hello"}
    assert got[22] == {"id": 22, "name": None, "qty": 22, "note": "late"}
    assert got[3] == {"id": 3, "name": None, "qty": 3, "note": "upd"}  # written after the drop
    assert got[4] == {"id": 4, "name": "n4", "qty": 4, "note": None}  # untouched since
    assert len(got) == 22
    # at most one commit per checkpoint and part (a checkpoint's changes, then its staged
    # inserts added: two parts)
    tags = [(c["hub.app"], c["hub.checkpoint"], c.get("hub.part"))
            for c in DeltaTable(uri).history() if "hub.checkpoint" in c]
    assert len(tags) == len(set(tags)), tags
