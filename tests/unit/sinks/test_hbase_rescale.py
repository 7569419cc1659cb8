"""The HBase sink's writer state across a change of parallelism (at-least-once: the last cell
timestamp of each writer)."""
from __future__ import annotations

from runtime.rescale import writer_states_for
from runtime.sink import WriterContext
from sinks.hbase.config import HBaseSinkConfig
from sinks.hbase.sink import HBaseSink
from sinks.hbase.writer import HBaseSinkWriter


def _sink() -> HBaseSink:
    return HBaseSink(HBaseSinkConfig.model_validate({"delivery": "at-least-once"}))


def test_every_new_writer_starts_above_the_highest_timestamp_of_the_old_ones():
    states = [{"last_timestamp": 1_700_000_000_500}, {"last_timestamp": 1_700_000_000_900},
              {"last_timestamp": 1_700_000_000_100}]
    for parallelism in (1, 2, 5):
        assert writer_states_for(_sink(), states, parallelism, 7, "sinks.hbase") == \
            [{"last_timestamp": 1_700_000_000_900}] * parallelism


def test_writers_that_never_wrote_give_no_state():
    # a writer without state (it wrote nothing yet) takes nothing from the others' maximum
    assert _sink().rescale_writer_states([None, {"last_timestamp": 42}], 3) == \
        [{"last_timestamp": 42}] * 3
    assert _sink().rescale_writer_states([None, None], 3) == [None, None, None]


def test_a_writer_restored_from_a_rescaled_state_writes_above_it(tmp_path):
    sink = _sink()
    (state, _) = sink.rescale_writer_states([{"last_timestamp": 10**13}, {"last_timestamp": 5}], 2)
    writer = HBaseSinkWriter(sink.config, WriterContext("p", 0, 2, "a", str(tmp_path)), None,
                             state)
    assert writer._clock.reserve(1) == 10**13 + 1  # above every old writer's cells
    assert writer.snapshot_state(1) == {"last_timestamp": 10**13 + 1}
