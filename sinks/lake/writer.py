"""The lake-table writer: stages each checkpoint's changes in write-ahead-log segments."""
from __future__ import annotations

from runtime.sink import Committable, WriterContext
from runtime.wal import WalSinkWriter


class LakeSinkWriter(WalSinkWriter):
    """Writes the batches of one subtask into the checkpoint's write-ahead-log segment (see
    :class:`~runtime.wal.WalSinkWriter`), always exactly once: nothing reaches a table before
    the committer commits the checkpoint.  Each committable names its checkpoint
    (``{"segment", "rows", "checkpoint"}``): the committer commits one table transaction per
    table and checkpoint, tagged with that id.  Schema changes reach the committer with the
    batches (each segment file holds the schema of its rows); truncating or dropping a table
    is not applied (the lake table keeps its rows), with a warning."""

    container = "lake table"

    def __init__(self, context: WriterContext, sink_name: str):
        self.sink_name = sink_name  # the segments' folder: the committer's
        super().__init__(context, exactly_once=True, flush_rows=0)

    def prepare_commit(self, checkpoint_id: int) -> list[Committable]:
        return [dict(c, checkpoint=checkpoint_id) for c in super().prepare_commit(checkpoint_id)]
