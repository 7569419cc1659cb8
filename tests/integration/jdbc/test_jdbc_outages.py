"""Sink outages are retried, never fatal: PostgreSQL stopped (``pg_ctl stop -m fast``) in the
middle of a stream and started again, or down when the pipeline starts, ends with the same
tables as a run that never failed, with no human action.  Refused credentials are terminal, in
one line naming user, host and port.

The outage tests stop and start a throwaway server of their own, also when
``HUB_TEST_POSTGRES`` names an external one (which they must not stop); they are skipped only
where the PostgreSQL package is not installed.
"""
from __future__ import annotations

import time

import pytest

from runtime.errors import TerminalError
from sinks.jdbc.config import JdbcSinkConfig
from sinks.jdbc.sink import JdbcSink
from tests.integration.jdbc.databases import create_database
from tests.killing import datagen_pipeline, hub, latest_checkpoint, run_to_end

pytestmark = [pytest.mark.integration, pytest.mark.jdbc]

ROWS = 12_000
TABLES = ("orders", "customers")
SINK = """\
[sink]
type = "jdbc"
url = "{url}"
batch-size = 1000
[restart]
delay = "0.3s"
max-delay = "2s"
attempts = 20
"""


@pytest.fixture(scope="module")
def own_postgres():
    """A throwaway PostgreSQL this module may stop and start: ``(owner, server)``."""
    from tests.servers.postgres import ThrowawayPostgres, skip_unless_installed_here

    skip_unless_installed_here()  # never the external server of HUB_TEST_POSTGRES: it's stopped

    owner = ThrowawayPostgres()
    server = owner.start()
    yield owner, server
    owner.stop()


def pipeline(d, url: str, rps: int) -> str:
    return datagen_pipeline(d / "pipeline.toml", SINK.format(url=url), name="outage",
                            state=str(d / "state"), rows=ROWS, rps=rps, delete_ratio=0.1)


@pytest.fixture(scope="module")
def reference(own_postgres, tmp_path_factory):
    _, server = own_postgres
    db = create_database("postgres", server, "reference")
    run_to_end(pipeline(tmp_path_factory.mktemp("reference"), db.url, rps=0))
    return {t: db.snapshot(t) for t in TABLES}


def check_same(db, reference) -> None:
    for t in TABLES:
        assert db.snapshot(t) == reference[t], f"{t} differs from the run that never failed"
    assert db.prepared("hub:outage:") == []


def _wait_for_checkpoint_after(state: str, before: int, p, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = latest_checkpoint(state)
        if now > before:
            return now
        assert p.poll() is None, "the pipeline ended before the outage: " + p.communicate()[1]
        time.sleep(0.05)
    raise AssertionError(f"no checkpoint after {before} within {timeout}s")


def test_postgres_stopped_twice_mid_stream(own_postgres, reference, tmp_path, request):
    owner, server = own_postgres
    db = create_database("postgres", server, request.node.nodeid)
    path = pipeline(tmp_path, db.url, rps=1500)
    state = str(tmp_path / "state")
    p = hub("run", path, "--no-progress")
    try:
        seen = 0
        for _ in range(2):
            seen = _wait_for_checkpoint_after(state, seen, p)
            owner.shutdown()  # sessions end with AdminShutdown
            time.sleep(2)
            owner.restart()
            # progress again after the outage before the next one
            seen = _wait_for_checkpoint_after(state, latest_checkpoint(state), p, timeout=90)
        err = p.communicate(timeout=180)[1]
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 0, err
    assert "internal error" not in err
    assert "restarting from the latest checkpoint" in err  # the outage was met and retried
    check_same(db, reference)


def test_postgres_down_at_start_is_retried(own_postgres, reference, tmp_path, request):
    owner, server = own_postgres
    db = create_database("postgres", server, request.node.nodeid)
    path = pipeline(tmp_path, db.url, rps=0)
    owner.shutdown()
    try:
        p = hub("run", path, "--no-progress")
        time.sleep(3)
        assert p.poll() is None, "the pipeline gave up while PostgreSQL was down: " + \
            p.communicate()[1]
    finally:
        owner.restart()
    err = p.communicate(timeout=180)[1]
    assert p.returncode == 0, err
    assert "can't connect to PostgreSQL" in err  # it really was down, and that was retried
    check_same(db, reference)


@pytest.mark.parametrize("flavor", ["postgres", "mariadb"])
def test_refused_credentials_are_terminal_and_name_user_host_port(flavor, request):
    server = request.getfixturevalue("postgres_server" if flavor == "postgres"
                                     else "mysql_server")
    db = create_database(flavor, server, request.node.nodeid)
    scheme = "postgresql" if flavor == "postgres" else "mysql"
    url = f"{scheme}://no_such_user:wrong@{server.host}:{server.port}/{db.name}"
    sink = JdbcSink(JdbcSinkConfig.model_validate({"url": url}))
    with pytest.raises(TerminalError) as info:
        sink.check()
    message = str(info.value)
    assert "no_such_user" in message and f"{server.host}:{server.port}" in message
    assert "\n" not in message
    with pytest.raises(TerminalError):
        sink.dialect().connect()
