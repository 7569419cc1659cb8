"""Transforms and routes chained in front of a sink's writers (Flink's operator chaining).

:class:`TransformingSink` wraps a pipeline's sink: each writer it creates passes every batch
and schema change through the :class:`Transformer` (the ``[[transform]]`` blocks) and then the
:class:`Router` (the ``[[route]]`` blocks) before the sink's own writer sees it, in the same
subtask thread, without another channel.  Transforms are stateless; the router's merged schemas
are part of the writer state (``{"inner": <the sink writer's state>, "routes": {...}}``), so a
restore rebuilds them as they were.  ``schema_change_behavior`` (Flink CDC's modes) and the
sink's ``include-schema-changes`` / ``exclude-schema-changes`` (``schema_changes``) decide what
schema changes reach the sink: see :class:`~runtime.transform.route.Router`.  Committables and
the committer are the sink's own.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import logging

from runtime.batch import ChangeBatch
from runtime.errors import TerminalError
from runtime.rescale import SupportsWriterStateRescale, WriterState, writer_states_for
from runtime.schema import SchemaChange
from runtime.sink import Committable, Committer, Sink, SinkWriter, WriterContext
from runtime.transform.changes import SchemaChangeFilter
from runtime.transform.route import RouteRule, Router

if TYPE_CHECKING:  # the transform operator (and sqlglot) load only when there are transforms
    from runtime.transform.transform import TransformRule, Transformer

log = logging.getLogger(__name__)

_STATE_KEYS = {"inner", "routes"}


class TransformingSink(Sink, SupportsWriterStateRescale):
    """``inner`` with ``transforms`` and ``routes`` in front of its writers (plain data: it
    pickles with the sink for executors that ship it)."""

    def __init__(self, inner: Sink, transforms: list[TransformRule], routes: list[RouteRule],
                 schema_change_behavior: str = "lenient",
                 schema_changes: SchemaChangeFilter | None = None):
        self.inner = inner
        self.transforms = list(transforms)
        self.routes = list(routes)
        self.behavior = schema_change_behavior
        #: the sink's include-schema-changes / exclude-schema-changes
        self.schema_changes = schema_changes or SchemaChangeFilter()

    @property
    def operator_name(self) -> str:
        """Error messages name the sink's package, not this wrapper's."""
        module = type(self.inner).__module__
        return module.rsplit(".", 1)[0] if "." in module else module

    def check(self) -> None:
        """The sink's own check; and, once at start, a log line when transforms set
        partition keys this sink does not partition by (Flink CDC ignores them there too)."""
        self.inner.check()
        keyed = [r.source_table for r in self.transforms if r.partition_keys]
        if keyed and not self.inner.partitions_tables:
            log.info("the %s sink does not partition tables: partition-keys of the transforms "
                     "of %s ignored", self.operator_name.rsplit(".", 1)[-1], ", ".join(keyed))

    def create_writer(self, context: WriterContext, state: dict[str, Any] | None) -> SinkWriter:
        inner_state, routes = _split(state)
        transformer = None
        if self.transforms:
            from runtime.transform.transform import Transformer  # noqa: PLC0415

            transformer = Transformer(self.transforms)
        return TransformingWriter(self.inner.create_writer(context, inner_state),
                                  transformer,
                                  Router(self.routes, routes, self.behavior,
                                         self.schema_changes.applied(self.behavior)),
                                  context.record_out)

    def create_committer(self) -> Committer:
        return self.inner.create_committer()

    def read_hint(self, tables: list[str]) -> str | None:
        router = Router(self.routes)
        return self.inner.read_hint(sorted({router.target_of(t) or t for t in tables}))

    def existing_output(self, pipeline: str) -> list[str]:
        return self.inner.existing_output(pipeline)

    def rescale_writer_states(self, states: list[WriterState], parallelism: int
                              ) -> list[WriterState]:
        inner = [_split(s)[0] for s in states]
        merged = Router.merge_states([_split(s)[1] for s in states])
        out = writer_states_for(self.inner, inner, parallelism)
        return [_join(s, merged) for s in out]


def _split(state: dict[str, Any] | None) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    if state is not None and set(state) == _STATE_KEYS:
        return state["inner"], state["routes"]
    return state, None  # a checkpoint taken without transforms: the sink's state as it is


def _join(inner: dict[str, Any] | None, routes: dict[str, Any]) -> dict[str, Any] | None:
    if not routes:
        return inner
    return {"inner": inner, "routes": routes}


class TransformingWriter(SinkWriter):
    """A sink writer behind the transform and route operators.  It counts (``record_out``,
    ``hub_records_out_total``) the rows the sink's writer receives: after the filter, under
    the routed table names, one call per batch."""

    counts_output = True

    def __init__(self, inner: SinkWriter, transformer: Transformer | None, router: Router,
                 record_out: Callable[[str, str], None] | None = None):
        self.inner = inner
        self.transformer = transformer
        self.router = router
        self.record_out = record_out

    def write(self, batch: ChangeBatch) -> None:
        out = self.transformer.apply(batch) if self.transformer is not None else batch
        if out is None or not len(out):
            return
        if self.router.active:
            changes, out = self.router.apply(out)
            for change in changes:
                self.inner.write_schema_change(change)
        self.inner.write(out)
        if self.record_out is not None:
            self.record_out(out.schema.table, out.ops)

    def write_schema_change(self, change: SchemaChange) -> None:
        out = (self.transformer.apply_schema_change(change) if self.transformer is not None
               else change)
        if out is None:
            return
        for c in self.router.apply_schema_change(out) if self.router.active else [out]:
            if self.router.behavior != "try-evolve":
                self.inner.write_schema_change(c)
                continue
            try:
                self.inner.write_schema_change(c)
            except TerminalError as exc:  # try-evolve: the sink refused it; go on without
                log.warning("%s of %s not applied by the sink, going on without it "
                            "(schema-change-behavior = try-evolve): %s", c.kind, c.table, exc)

    def on_watermark(self, watermark_ms: int) -> None:
        self.inner.on_watermark(watermark_ms)

    def prepare_commit(self, checkpoint_id: int) -> list[Committable]:
        return self.inner.prepare_commit(checkpoint_id)

    def snapshot_state(self, checkpoint_id: int) -> dict[str, Any] | None:
        return _join(self.inner.snapshot_state(checkpoint_id), self.router.snapshot_state())

    def notify_checkpoint_stored(self, checkpoint_id: int) -> None:
        self.inner.notify_checkpoint_stored(checkpoint_id)

    def notify_checkpoint_complete(self, checkpoint_id: int) -> None:
        self.inner.notify_checkpoint_complete(checkpoint_id)

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        # sink-specific extras the runtime looks up on writers (gauges ...) are the inner's
        if name == "inner":  # not set yet (e.g. while unpickling): no endless recursion
            raise AttributeError(name)
        return getattr(self.inner, name)
