"""Driving a sink checkpoint by checkpoint in the test process: its real writer and
committer, one writer per checkpoint (the lake sinks' integration tests)."""
from __future__ import annotations

from typing import Any

from runtime.batch import ChangeBatch
from runtime.sink import CommitContext, Sink, WriterContext


class SinkDriver:
    """``sink``'s writer and committer under pipeline ``pipeline`` and job ``job``, state in
    ``state``: one checkpoint per :meth:`checkpoint` call (:meth:`stage` prepares one
    without committing it)."""

    def __init__(self, sink: Sink, state: str, pipeline: str, job: str = "job-1"):
        self.sink = sink
        self.state = state
        self.pipeline = pipeline
        self.job = job
        self.committer: Any = sink.create_committer()
        self.cp = 0
        self.seq = 0

    def context(self, cp: int | None = None) -> CommitContext:
        return CommitContext(self.pipeline, self.cp if cp is None else cp, None, self.state,
                             job_id=self.job)

    def stage(self, *batches: ChangeBatch, subtask: int = 0) -> list[dict]:
        """Write ``batches`` into a writer and prepare the next checkpoint; the committables."""
        self.cp += 1
        w = self.sink.create_writer(
            WriterContext(self.pipeline, subtask, 1, "a1", self.state), None)
        for b in batches:
            if b.versions is None:  # source order, increasing over the test
                b.versions = list(range(self.seq, self.seq + len(b)))
                self.seq += len(b)
            w.write(b)
        out = w.prepare_commit(self.cp)
        w.close()
        return out

    def checkpoint(self, *batches: ChangeBatch) -> None:
        self.committer.commit(self.stage(*batches), self.context())
