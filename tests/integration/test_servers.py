"""The throwaway servers themselves: they start, and have the settings the connectors need."""
import pytest

pytestmark = pytest.mark.integration


def test_mariadb_has_row_binlog_and_gtid(mysql_server):
    conn = mysql_server.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT @@log_bin, @@binlog_format")
        assert cur.fetchone() == (1, "ROW")
    conn.close()


def test_postgres_allows_prepared_transactions(postgres_server):
    with postgres_server.connect() as conn:
        assert int(conn.execute("SHOW max_prepared_transactions").fetchone()[0]) > 0
