"""A position the server no longer has (purged binlogs, RESET MASTER, another server) stops the
pipeline with one line that names the position and gives the complete remedy: a new snapshot
alone (``--fresh``) leaves rows deleted at the source in the target, so the line says to empty
or drop the target tables first."""
from __future__ import annotations

import pytest

from sources.mysql.protocol import BinlogPurgedError
from tests.integration.mysql.helpers import Running, new_database, source_config

pytestmark = [pytest.mark.integration, pytest.mark.mysql]


def test_purged_position_names_the_position_and_the_whole_remedy(mysql_server):
    db = new_database(mysql_server)
    config = source_config(mysql_server, db, **{
        "startup-mode": "specific-offset", "startup-specific-offset-file": "mysql-bin.999998",
        "startup-specific-offset-pos": 4})
    run = Running(config, parallelism=1)
    with run:
        run.thread.join(30)
    err = run.error
    assert isinstance(err, BinlogPurgedError), err
    line = str(err)
    assert "\n" not in line
    assert "mysql-bin.999998:4" in line and f"{mysql_server.host}:{mysql_server.port}" in line
    assert "--fresh" in line
    # what to do with the target: a new snapshot can't delete what the source deleted since
    assert "empty" in line and "drop the target tables" in line
    assert "deleted at the source" in line
