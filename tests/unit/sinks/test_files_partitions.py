"""Files sink: event-time partitions and their _SUCCESS files."""
from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from runtime.batch import ChangeBatch
from runtime.errors import TerminalError
from runtime.schema import Column, TableSchema
from runtime.types import T
from sink_helpers import (HOUR, commit_context, files_sink, listing, orders, read_part,
                          writer_context)
from sinks.files.partition import DEFAULT_PARTITION, Partitioner, granularity_of

T0 = int(datetime(2024, 3, 1, 10, tzinfo=UTC).timestamp() * 1000)  # 10:00 UTC


def test_rows_go_to_event_time_partitions_and_success_waits_for_the_watermark(root: Path) -> None:
    sink = files_sink(root, partition_format="dt=%Y-%m-%d/hr=%H")
    writer = sink.create_writer(writer_context(), None)
    ts = [T0 + 5, T0 + HOUR + 5, T0 + 6, T0 + HOUR + 6]
    writer.write(orders([1, 2, 3, 4], ts_ms=ts))
    committables = writer.prepare_commit(1)
    committer = sink.create_committer()

    not_yet = committer.commit(committables, commit_context(watermark_ms=T0 + HOUR - 1))
    visible, hidden = listing(root)
    assert hidden == []
    assert [v.rsplit("/", 1)[0] for v in visible] == ["shop/orders/dt=2024-03-01/hr=10",
                                                       "shop/orders/dt=2024-03-01/hr=11"]
    assert read_part(root / visible[0]).column("id").to_pylist() == [1, 3]
    assert read_part(root / visible[1]).column("id").to_pylist() == [2, 4]
    assert len(not_yet) == 2                   # neither hour is over

    # the runtime offers deferred committables again, together with the next checkpoint's
    writer.write(orders([5], ts_ms=T0 + HOUR + 7))
    again = not_yet + writer.prepare_commit(2)
    not_yet = committer.commit(again, commit_context(watermark_ms=T0 + HOUR))
    assert not_yet == [{"kind": "partition", "end_ms": T0 + 2 * HOUR,
                        "dir": str(root / "shop/orders/dt=2024-03-01/hr=11"),
                        "table": "shop.orders", "part": "dt=2024-03-01/hr=11"}]  # deduplicated
    assert "shop/orders/dt=2024-03-01/hr=10/_SUCCESS" in listing(root)[0]
    assert "shop/orders/dt=2024-03-01/hr=11/_SUCCESS" not in listing(root)[0]

    assert committer.commit(not_yet, commit_context(watermark_ms=2**63 - 1)) == []
    assert "shop/orders/dt=2024-03-01/hr=11/_SUCCESS" in listing(root)[0]


def test_no_watermark_commits_files_but_no_partition(root: Path) -> None:
    sink = files_sink(root, partition_format="%Y%m%d")
    writer = sink.create_writer(writer_context(), None)
    writer.write(orders([1], ts_ms=T0))
    not_yet = sink.create_committer().commit(writer.prepare_commit(1), commit_context())
    assert [c["kind"] for c in not_yet] == ["partition"]
    visible = listing(root)[0]
    assert len(visible) == 1 and visible[0].startswith("shop/orders/20240301/part-")


def test_success_file_can_be_switched_off(root: Path) -> None:
    sink = files_sink(root, partition_format="%Y%m%d", success_file=False)
    writer = sink.create_writer(writer_context(), None)
    writer.write(orders([1], ts_ms=T0))
    assert [c["kind"] for c in writer.prepare_commit(1)] == ["file"]


def test_partition_by_a_column_in_a_time_zone(root: Path) -> None:
    schema = TableSchema("shop.events", (Column("id", T("INT")),
                                         Column("at", T("TIMESTAMP_LTZ(3)"))))
    at = datetime(2024, 3, 1, 20, 0, tzinfo=UTC)  # 2024-03-02 01:30 in Kolkata (+5:30)
    batch = ChangeBatch.of_rows(schema, [(1, at), (2, None)], ts_ms=0)
    sink = files_sink(root, partition_format="dt=%Y-%m-%d", partition_time_column="at",
                      partition_time_zone="Asia/Kolkata")
    writer = sink.create_writer(writer_context(), None)
    writer.write(batch)
    committables = writer.prepare_commit(1)
    dirs = sorted(c["dir"].rsplit("/", 1)[1] for c in committables if c["kind"] == "partition")
    assert dirs == ["dt=2024-03-02"]           # the null row's partition never completes
    files = sorted(c["final"].split("/")[-2] for c in committables if c["kind"] == "file")
    assert files == [DEFAULT_PARTITION, "dt=2024-03-02"]
    end = next(c["end_ms"] for c in committables if c["kind"] == "partition")
    assert end == int(datetime(2024, 3, 2, 18, 30, tzinfo=UTC).timestamp() * 1000)


def test_a_missing_time_column_is_a_terminal_error(root: Path) -> None:
    sink = files_sink(root, partition_format="%Y", partition_time_column="nope")
    writer = sink.create_writer(writer_context(), None)
    with pytest.raises(TerminalError, match="shop.orders has no column 'nope'"):
        writer.write(orders([1]))


@pytest.mark.parametrize("pattern, unit", [("dt=%Y-%m-%d/hr=%H", "hour"), ("%Y/%m", "month"),
                                           ("%Y-%m-%dT%H%M", "minute"), ("w%V", "week"),
                                           ("%F", "day"), ("y=%Y", "year")])
def test_granularity_is_the_finest_unit(pattern: str, unit: str) -> None:
    assert granularity_of(pattern) == unit


@pytest.mark.parametrize("pattern", ["static", "%Q"])
def test_bad_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(ValueError):
        granularity_of(pattern)


def test_split_keeps_row_order_within_partitions() -> None:
    p = Partitioner("%d")
    day = 86_400_000
    ts = pa.array([3 * day, 1 * day, 3 * day + 1, 2 * day, 1 * day + 5], pa.int64())
    table = pa.table({"x": list(range(5)), "ts_ms": ts})
    groups = {part.dir: (part.end_ms, rows.column("x").to_pylist())
              for part, rows in p.split(table)}
    assert groups == {"04": (4 * day, [0, 2]), "02": (2 * day, [1, 4]), "03": (3 * day, [3])}


def test_month_and_year_ends() -> None:
    dec = int(datetime(2023, 12, 31, 23, tzinfo=UTC).timestamp() * 1000)
    (part, _rows), = Partitioner("%Y-%m").split(pa.table({"ts_ms": pa.array([dec], pa.int64())}))
    assert part.dir == "2023-12"
    assert part.end_ms == int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)
