"""Exactly once into Elasticsearch, proven with kill -9 (the shared suite of
tests/integration/wal_exactly_once.py): the final indexes equal those of a run that never
failed."""
from __future__ import annotations

import pytest

from tests.integration.wal_exactly_once import WalSinkExactlyOnce

pytestmark = [pytest.mark.integration, pytest.mark.elasticsearch]

SINK = """\
[sink]
type = "elasticsearch"
hosts = ["{url}"]
index = "{prefix}-{{db}}.{{table}}"
compatibility-mode = {compat}
delivery = "{delivery}"
bulk-max-actions = 300
"""


class TestElasticsearchExactlyOnce(WalSinkExactlyOnce):
    name = "es-kill"

    @pytest.fixture(scope="class")
    @classmethod
    def server(cls, elasticsearch_server):
        return elasticsearch_server

    def sink(self, server, prefix: str, delivery: str) -> str:
        compat = server.compatibility_toml()
        return SINK.format(url=server.url, prefix=prefix, compat=compat, delivery=delivery)

    def contents(self, server, prefix: str) -> dict:
        """{(index suffix, _id): _source} of every document under ``prefix``."""
        es = server.client()
        try:
            es.indices.refresh(index=f"{prefix}-*")
            out = {}
            for index in sorted(es.indices.get(index=f"{prefix}-*")):
                after = None
                while True:
                    kw = {"search_after": after} if after else {}
                    hits = es.search(index=index, size=5000, sort=[{"id": "asc"}],
                                     **kw)["hits"]["hits"]
                    if not hits:
                        break
                    for h in hits:
                        out[(index[len(prefix) + 1:], h["_id"])] = h["_source"]
                    after = hits[-1]["sort"]
            return out
        finally:
            es.close()
