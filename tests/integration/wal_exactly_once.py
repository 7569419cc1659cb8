"""The kill -9 suite of the sinks that are exactly once through a write-ahead log and versioned
writes (Elasticsearch, HBase): a datagen pipeline with updates and deletes, killed at random
moments, crashed between a durable checkpoint and its commit, with its checkpoints (and so its
log) on HDFS, and at-least-once, must end with the same contents as a run that never failed.

A sink's test module subclasses :class:`WalSinkExactlyOnce` as ``Test...`` and gives the
``server`` fixture, the ``[sink]`` TOML and how to read back what the sink wrote.
"""
from __future__ import annotations

import glob
import uuid
from abc import ABC, abstractmethod

import pytest

from runtime.fs import filesystem
from runtime.sink import WriterContext
from tests.killing import (assert_resumed_after, crash_at, datagen_pipeline,
                           kill_at_random, run_to_end)

ROWS = 5000


class WalSinkExactlyOnce(ABC):
    name = "wal-kill"

    @abstractmethod
    def sink(self, server, prefix: str, delivery: str) -> str:
        """The ``[sink]`` TOML: everything written under names starting with ``prefix``."""

    @abstractmethod
    def contents(self, server, prefix: str) -> dict:
        """What the sink wrote under ``prefix``: ``{(table, key): row}``."""

    def check_reference(self, contents: dict) -> None:
        """More checks of a run that never failed."""

    def pipeline(self, d, server, rps: int, delivery: str = "exactly-once",
                 state: str | None = None) -> tuple[str, str]:
        prefix = f"kill-{uuid.uuid4().hex[:10]}"
        return datagen_pipeline(d / "pipeline.toml", self.sink(server, prefix, delivery),
                                name=self.name, state=state or str(d / "state"), rows=ROWS,
                                rps=rps, interval="150ms", batch_size=250, update_ratio=0.3,
                                delete_ratio=0.1), prefix

    @pytest.fixture(scope="class")
    @classmethod
    def reference(cls, tmp_path_factory, server) -> dict:
        self = cls()  # a class-scoped fixture runs once, outside any test's instance
        d = tmp_path_factory.mktemp("reference")
        pipeline, prefix = self.pipeline(d, server, rps=0)
        run_to_end(pipeline)
        contents = self.contents(server, prefix)
        assert {t for t, _ in contents} == {"datagen.orders", "datagen.customers"}
        # updates and deletes happened: fewer live rows than inserts
        assert 0 < len(contents) < 2 * ROWS
        self.check_reference(contents)
        return contents

    def test_kill_9_at_random_moments(self, tmp_path, server, reference):
        pipeline, prefix = self.pipeline(tmp_path, server, rps=4000)
        kill_at_random(pipeline, str(tmp_path / "state"), times=3, between=(0.0, 0.8))
        err = run_to_end(pipeline)
        assert "resuming from checkpoint" in err
        assert self.contents(server, prefix) == reference
        assert glob.glob(str(tmp_path / "state" / "state" / "wal" / "*" / "*" / "*")) == []

    @pytest.mark.parametrize("point", ["checkpoint-stored", "checkpoint-committed"])
    def test_crash_between_checkpoint_and_commit(self, tmp_path, server, reference, point):
        # 4000 rows/s: checkpoint 3 must still hold changes, though the first commit creates
        # the indexes (about a second on a real OpenSearch node)
        pipeline, prefix = self.pipeline(tmp_path, server, rps=4000)
        crash_at(pipeline, point, 3)
        segments = glob.glob(str(tmp_path / "state" / "state" / "wal" / "*" / "*" / "*"))
        if point == "checkpoint-stored":
            # checkpoint 3 is durable but was never applied: its segments wait for the restart
            assert segments, "no write-ahead-log segment was left to replay"
        assert_resumed_after(run_to_end(pipeline), point, 3)
        assert self.contents(server, prefix) == reference

    def test_log_on_hdfs(self, tmp_path, server, reference, webhdfs_server):
        """Checkpoints on HDFS put the log there too; a crash before the commit of a durable
        checkpoint leaves its segments on HDFS, to be applied after the restart."""
        state = f"{webhdfs_server.url}/it/{uuid.uuid4().hex[:12]}"
        # 4000 rows/s: checkpoint 3 must still hold changes, though the first commit creates
        # the indexes (about a second on a real OpenSearch node) and checkpoints go to HDFS
        pipeline, prefix = self.pipeline(tmp_path, server, rps=4000, state=state)
        # cwd: the lock and control files of a pipeline with HDFS checkpoints stay local
        crash_at(pipeline, "checkpoint-stored", 3, cwd=str(tmp_path))
        fs = filesystem(state)
        wal = [e.path for _, _, files in fs.walk(f"{state}/state/wal") for e in files]
        assert wal, "no write-ahead-log segment was left on HDFS to replay"
        assert_resumed_after(run_to_end(pipeline, cwd=str(tmp_path)), "checkpoint-stored", 3)
        assert self.contents(server, prefix) == reference
        assert not [d for d, _, files in fs.walk(f"{state}/state/wal")
                    if any(f.name.endswith(".arrow") for f in files)]

    def test_at_least_once_ends_equal_too(self, tmp_path, server, reference):
        """Without the log, changes since the last checkpoint are written again after a kill:
        versioned writes make the repeats harmless."""
        pipeline, prefix = self.pipeline(tmp_path, server, rps=4000, delivery="at-least-once")
        kill_at_random(pipeline, str(tmp_path / "state"), times=1, between=(0.0, 0.5),
                       min_kills=1)
        run_to_end(pipeline)
        assert self.contents(server, prefix) == reference


def prepare(sink, state_dir, subtask: int, *batches, parallelism: int = 2) -> list[dict]:
    """What one writer of ``sink`` prepares for checkpoint 1 from ``batches`` (then closed)."""
    writer = sink.create_writer(WriterContext("it", subtask, parallelism, "r1", str(state_dir)),
                                None)
    for b in batches:
        writer.write(b)
    committables = writer.prepare_commit(1)
    writer.close()
    return committables
