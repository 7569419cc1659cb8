"""A server without what two-phase commit needs gives one clear line before anything runs."""
import pytest

from runtime.errors import HubError
from sinks.jdbc.config import JdbcSinkConfig
from sinks.jdbc.sink import JdbcSink
from tests.servers.postgres import ThrowawayPostgres

pytestmark = [pytest.mark.integration, pytest.mark.jdbc]


@pytest.fixture(scope="module")
def postgres_without_2pc():
    server = ThrowawayPostgres(max_prepared_transactions=0)
    try:
        yield server.start()
    finally:
        server.stop()


def test_postgres_without_prepared_transactions_is_a_clear_error(postgres_without_2pc):
    sink = JdbcSink(JdbcSinkConfig.model_validate({"url": postgres_without_2pc.url}))
    with pytest.raises(HubError, match="max_prepared_transactions") as info:
        sink.check()
    assert "\n" not in str(info.value)


def test_without_exactly_once_no_prepared_transactions_are_needed(postgres_without_2pc):
    sink = JdbcSink(JdbcSinkConfig.model_validate({"url": postgres_without_2pc.url,
                                                   "exactly-once": False}))
    sink.check()
