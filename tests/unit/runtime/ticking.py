"""An unbounded in-test source: one split, one small batch every few ms, forever."""
from __future__ import annotations

import time

from runtime.batch import ChangeBatch
from runtime.source import InputStatus, Source, SourceReader, Split, SplitEnumerator
from tests.conformance.harness import ORDERS


class OneSplitEnumerator(SplitEnumerator):
    def __init__(self, ctx, given):
        self.ctx, self.given = ctx, given

    def handle_split_request(self, subtask):
        if not self.given:
            self.given = True
            self.ctx.assign_splits({subtask: [Split("only")]})

    def snapshot_state(self, checkpoint_id):
        return {"given": self.given}


class TickReader(SourceReader):
    """Emits one small batch every few ms with growing event time, forever."""

    def __init__(self, ctx):
        self.ctx, self.splits, self.t = ctx, [], 0

    def start(self):
        self.ctx.send_split_request()

    def add_splits(self, splits):
        self.splits.extend(splits)

    def poll_next(self, output):
        if not self.splits:
            return InputStatus.NOTHING_AVAILABLE
        self.t += 1
        output.collect(ChangeBatch(ORDERS, "c", rows=[(self.t, "x", None)], ts_ms=self.t * 1000),
                       "only")
        time.sleep(0.005)
        return InputStatus.MORE_AVAILABLE

    def snapshot_state(self, checkpoint_id):
        return list(self.splits)


class UnboundedOneSplit(Source):
    def create_enumerator(self, context, state):
        return OneSplitEnumerator(context, bool(state and state["given"]))

    def create_reader(self, context):
        return TickReader(context)
