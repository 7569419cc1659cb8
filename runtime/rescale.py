"""Writer state across a change of parallelism.

Reader state redistributes on its own (a reader's state is a list of splits, dealt out again).
A writer's state (:meth:`~runtime.sink.SinkWriter.snapshot_state`) is the sink's own business,
so only the sink can say how the states of ``n`` writers become those of ``m``: a sink that can
implements :class:`SupportsWriterStateRescale`.  For any other sink a restore at another
parallelism is refused in one line (:func:`writer_states_for`), never dropped silently:
states that are all empty need no rescaling.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from runtime.errors import ConfigError

WriterState = dict[str, Any] | None


class SupportsWriterStateRescale(ABC):
    """A :class:`~runtime.sink.Sink` whose writer states can be given to another number of
    writers (Flink's ``StatefulSinkWriter`` restored at a new parallelism)."""

    @abstractmethod
    def rescale_writer_states(self, states: list[WriterState], parallelism: int
                              ) -> list[WriterState]:
        """The states of ``parallelism`` writers that together carry what ``states`` (one per
        writer at the checkpoint, in subtask order) carried; nothing may be lost or doubled.
        Called on the control side before any writer is created; pure (no I/O).  Raise a
        one-line :class:`~runtime.errors.HubError` when these particular states can't be
        redistributed (e.g. data held back for a table that one writer must apply in order)."""


def writer_states_for(sink: Any, states: list[WriterState], parallelism: int,
                      checkpoint_id: int | None = None, sink_name: str = "") -> list[WriterState]:
    """The writer states for ``parallelism`` writers from a checkpoint's ``states``: as they
    are at the same parallelism, all empty when none holds anything, else rescaled by a sink
    that supports it; otherwise :class:`~runtime.errors.ConfigError` naming the sink, both
    parallelisms and the remedies."""
    if len(states) == parallelism:
        return list(states)
    if all(s is None for s in states):
        return [None] * parallelism
    if isinstance(sink, SupportsWriterStateRescale):
        out = sink.rescale_writer_states(list(states), parallelism)
        if len(out) != parallelism:  # a bug in the sink: never start with the wrong count
            raise ValueError(f"{type(sink).__name__}.rescale_writer_states returned "
                             f"{len(out)} states for parallelism {parallelism}")
        return out
    name = sink_name or type(sink).__name__
    at = f"checkpoint {checkpoint_id}" if checkpoint_id is not None else "the checkpoint"
    raise ConfigError(
        f"{at} holds the state of {len(states)} writers of the {name} sink, which can't "
        f"redistribute it to {parallelism}: resume with parallelism {len(states)} (or from a "
        f"savepoint taken with parallelism {parallelism}), or start over with --fresh",
        key="pipeline.parallelism")
