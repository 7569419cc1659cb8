"""The JDBC sink's writer states across a change of parallelism (no server: pure logic)."""
from __future__ import annotations

import pytest

from runtime.errors import ConfigError
from runtime.rescale import writer_states_for
from sinks.jdbc.config import JdbcSinkConfig
from sinks.jdbc.sink import JdbcSink


def sink() -> JdbcSink:
    return JdbcSink(JdbcSinkConfig.model_validate({"url": "postgresql://u:p@localhost/db"}))


def test_states_without_deferred_elements_follow_the_parallelism():
    states = [{"checkpoint": 7}, {"checkpoint": 7}]
    assert writer_states_for(sink(), states, 3, 7, "sinks.jdbc") == [{"checkpoint": 7}] * 3
    assert writer_states_for(sink(), states + [None], 1, 7, "sinks.jdbc") == [{"checkpoint": 7}]


def test_deferred_schema_changes_refuse_another_parallelism_in_one_line():
    deferred = {"checkpoint": 7, "deferred": [{"change": {"table": "shop.orders"}},
                                              {"schema": {"table": "shop.orders"}}]}
    with pytest.raises(ConfigError) as info:
        writer_states_for(sink(), [{"checkpoint": 7}, deferred], 3, 7, "sinks.jdbc")
    text = str(info.value)
    assert "\n" not in text and text.startswith("pipeline.parallelism: ")
    assert "shop.orders" in text and "resume with parallelism 2" in text
