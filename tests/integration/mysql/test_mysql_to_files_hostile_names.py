"""A MariaDB whose tables are named to escape (``../../../escape``, ``..``, dots, quotes,
semicolons, spaces, unicode) into the files sink, through ``hub run``: every file lands
below the lake's folder, each table in a folder of its own, with every row."""
from __future__ import annotations

import os
import signal
import time

import pyarrow.parquet as pq
import pytest

from runtime.fs import decode_segment, is_below
from tests.integration.mysql.helpers import new_database
from tests.killing import hub

pytestmark = [pytest.mark.integration, pytest.mark.mysql]

NAMES = ["../../../escape", "../x", "..", "a.b", 'q"x; y', "it's", "with space", "ünï",
         "plain"]

SINK = """\
[sink]
type = "files"
path = "{dir}/a/b/c/lake"
format = "parquet"
"""



def _parquet(top: str) -> list[str]:
    return [os.path.join(d, f) for d, _, files in os.walk(top) for f in files
            if f.endswith(".parquet") and not f.startswith(".")]


def test_hostile_mariadb_table_names_stay_in_the_lake(mysql_server, tmp_path):
    db = new_database(mysql_server)
    conn = mysql_server.connect()
    try:
        with conn.cursor() as cur:
            for i, name in enumerate(NAMES):
                quoted = name.replace("`", "``")
                cur.execute(f"CREATE TABLE `{db}`.`{quoted}` (id INT PRIMARY KEY, v VARCHAR(40))")
                cur.execute(f"INSERT INTO `{db}`.`{quoted}` VALUES (%s, %s), (%s, %s)",
                            (1, name, 2, name))
        path = tmp_path / "pipeline.toml"
        path.write_text(mysql_server.pipeline_toml("hostile", tmp_path / "state", db)
                        + SINK.format(dir=tmp_path))
        lake = str(tmp_path / "a" / "b" / "c" / "lake")
        p = hub("run", str(path), "--no-progress")
        deadline = time.monotonic() + 90
        while (sum(pq.read_metadata(f).num_rows for f in _parquet(str(tmp_path)))
               < 2 * len(NAMES) and time.monotonic() < deadline and p.poll() is None):
            time.sleep(0.2)
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE `{db}`")
        conn.close()

    files = _parquet(str(tmp_path))
    assert files and all(is_below(f, lake) for f in files), files
    by_folder: dict[str, set[str]] = {}
    for f in files:
        for v in pq.read_table(f).column("v").to_pylist():
            by_folder.setdefault(os.path.relpath(os.path.dirname(f), lake), set()).add(v)
    # one folder per table, holding that table's rows only
    assert sorted(v for values in by_folder.values() for v in values) == sorted(NAMES)
    assert all(len(values) == 1 for values in by_folder.values())
    assert {tuple(decode_segment(p) for p in folder.split(os.sep)): values.pop()
            for folder, values in by_folder.items()} == {(db, n): n for n in NAMES}
