"""Exactly once into HBase, proven with kill -9 (the shared suite of
tests/integration/wal_exactly_once.py): the final tables equal those of a run that never
failed."""
from __future__ import annotations

import happybase
import pytest

from tests.integration.wal_exactly_once import WalSinkExactlyOnce

pytestmark = [pytest.mark.integration, pytest.mark.hbase]

SINK = """\
[sink]
type = "hbase"
host = "{host}"
port = {port}
table = "{prefix}-{{db}}.{{table}}"
column-families = {{ note = "text", attrs = "text" }}
delivery = "{delivery}"
batch-size = 300
"""


class TestHBaseExactlyOnce(WalSinkExactlyOnce):
    name = "hbase-kill"

    @pytest.fixture(scope="class")
    @classmethod
    def server(cls, hbase_server):
        return hbase_server

    def pipeline(self, d, server, rps: int, delivery: str = "exactly-once",
                 state: str | None = None) -> tuple[str, str]:
        """At most 2,500 rows/s: a real HBase takes about a second to create the two tables,
        and at 8,000 rows/s the whole source was read meanwhile, leaving checkpoint 3 (where
        the crash tests stop) without rows to log."""
        return super().pipeline(d, server, min(rps, 2500) if rps else 0, delivery, state)

    def sink(self, server, prefix: str, delivery: str) -> str:
        return SINK.format(host=server.host, port=server.port, prefix=prefix, delivery=delivery)

    def contents(self, server, prefix: str) -> dict:
        """{(table suffix, rowkey): {column: value}} of every row under ``prefix``."""
        conn = happybase.Connection(server.host, server.port)
        try:
            out = {}
            for name in conn.tables():
                if name.decode().startswith(prefix + "-"):
                    for key, cells in conn.table(name).scan(batch_size=5000):
                        out[(name.decode()[len(prefix) + 1:], key)] = cells
            return out
        finally:
            conn.close()

    def check_reference(self, contents: dict) -> None:
        assert {col.split(b":")[0] for cells in contents.values() for col in cells} == \
            {b"cf", b"text"}
