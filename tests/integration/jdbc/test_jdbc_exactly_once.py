"""Exactly once, proven with kill -9: ``hub run`` of datagen (inserts, updates, deletes) into
PostgreSQL and MariaDB, killed at random moments and between a durable checkpoint and its
commit, ends with the same tables as a run that never failed, and no prepared transaction
left behind."""
from __future__ import annotations

import pytest

from tests.integration.jdbc.databases import create_database
from tests.killing import (assert_resumed_after, crash_at, datagen_pipeline,
                           kill_at_random, latest_checkpoint, run_to_end)

pytestmark = [pytest.mark.integration, pytest.mark.jdbc]

ROWS = 20_000
TABLES = ("orders", "customers")


SINK = """\
[sink]
type = "jdbc"
url = "{url}"
batch-size = 2000
"""


def write_pipeline(d, url: str, rps: int) -> str:
    sink = SINK.format(url=url)
    return datagen_pipeline(d / "pipeline.toml", sink, name="kill-test", state=str(d / "state"),
                            rows=ROWS, rps=rps, delete_ratio=0.1)


@pytest.fixture(scope="module", params=["postgres", "mariadb"])
def flavor_server(request):
    server = request.getfixturevalue("postgres_server" if request.param == "postgres"
                                     else "mysql_server")
    return request.param, server


@pytest.fixture(scope="module")
def reference(flavor_server, tmp_path_factory):
    flavor, server = flavor_server
    db = create_database(flavor, server, f"reference-{flavor}")
    run_to_end(write_pipeline(tmp_path_factory.mktemp("reference"), db.url, rps=0))
    snap = {t: db.snapshot(t) for t in TABLES}
    assert 0 < len(snap["orders"]) < ROWS  # deletes happened
    return snap


def check_same(db, reference) -> None:
    for t in TABLES:
        assert db.snapshot(t) == reference[t], f"{t} differs from the run that never failed"
    assert db.prepared("hub:kill-test:") == []


def test_kill_9_at_random_moments(flavor_server, reference, tmp_path, request):
    flavor, server = flavor_server
    db = create_database(flavor, server, request.node.nodeid)
    pipeline = write_pipeline(tmp_path, db.url, rps=10_000)
    kill_at_random(pipeline, str(tmp_path / "state"), times=3, between=(0.0, 0.8))
    err = run_to_end(pipeline)
    assert "resuming from checkpoint" in err
    check_same(db, reference)


@pytest.mark.parametrize("point", ["checkpoint-stored", "checkpoint-committed"])
def test_crash_between_prepare_and_commit(flavor_server, reference, tmp_path, request, point):
    flavor, server = flavor_server
    db = create_database(flavor, server, request.node.nodeid)
    pipeline = write_pipeline(tmp_path, db.url, rps=20_000)
    crashed = crash_at(pipeline, point, "3+" if point == "checkpoint-stored" else 3)
    crashed_at = latest_checkpoint(str(tmp_path / "state"))
    if point == "checkpoint-stored":
        # killed after the checkpoint was stored, before its commit: still prepared
        prepared = db.prepared("hub:kill-test:")
        assert any(x.endswith(f":{crashed_at}") for x in prepared), (prepared, crashed)
    err = run_to_end(pipeline)
    assert_resumed_after(err, point, crashed_at if point == "checkpoint-stored" else 3)
    check_same(db, reference)
