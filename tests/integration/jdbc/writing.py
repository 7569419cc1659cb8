"""Driving a JDBC sink writer and committer the way the runtime does, without a pipeline."""
from __future__ import annotations

import time
from collections.abc import Iterable

from runtime.batch import ChangeBatch
from runtime.schema import SchemaChange
from runtime.errors import HubError
from runtime.sink import CommitContext, Committer, Sink, WriterContext


def commit(committer: Committer, committables: list[dict], context: CommitContext) -> None:
    """Commit, retrying transient errors as the checkpoint coordinator does (MariaDB answers
    a commit right after the prepare with "still attached to its connection")."""
    for attempt in range(50):
        try:
            committer.commit(committables, context)
            return
        except HubError as exc:
            if not exc.transient or attempt == 49:
                raise
            time.sleep(0.1)


def write_and_commit(sink: Sink, context: WriterContext,
                     steps: Iterable[ChangeBatch | SchemaChange], checkpoint: int = 1) -> int:
    """Write ``steps`` (batches and schema changes) through one writer, prepare and commit
    checkpoint ``checkpoint``, and the following ones as long as the writer holds deferred
    elements in its state (a MySQL schema change waits for the commit of the transaction
    that wrote to its table).  Returns the last checkpoint id."""
    writer = sink.create_writer(context, None)
    committer = sink.create_committer()
    try:
        for s in steps:
            writer.write(s) if isinstance(s, ChangeBatch) else writer.write_schema_change(s)
        while True:
            committables = writer.prepare_commit(checkpoint)
            state = writer.snapshot_state(checkpoint) or {}
            commit(committer, committables, CommitContext(context.pipeline, checkpoint, None))
            writer.notify_checkpoint_complete(checkpoint)  # as the runtime does after a commit
            if not state.get("deferred"):
                return checkpoint
            checkpoint += 1
    finally:
        writer.close()
        committer.close()
