"""The runner restarts a job from its latest checkpoint after transient errors only."""
from __future__ import annotations

import pytest

from hub.config import CheckpointSpec, ErrorsSpec, PipelineSpec, RestartSpec
from hub.runner import _Control, _run_with_restarts
from runtime.checkpoint.storage import CheckpointStorage
from runtime.errors import HubError, TerminalError, TransientError
from runtime.metrics import PipelineMetrics
from runtime.watermark import WatermarkStrategy
from tests.conformance.harness import CollectSink, CollectStore, ListSource, make_batches

DATA = make_batches(2, 6, 20)


class FlakySink(CollectSink):
    """Fails ``failures`` times, each time after a few batches, with ``error``."""

    def __init__(self, store, failures, error, every=5):
        super().__init__(store)
        self.failures, self.error, self.seen, self.every = failures, error, 0, every

    def create_writer(self, context, state):
        writer = super().create_writer(context, state)
        write = writer.write

        def flaky(batch):
            self.seen += 1
            if self.failures and self.seen % self.every == 0:
                self.failures -= 1
                raise self.error("connection reset by peer")
            write(batch)

        writer.write = flaky
        return writer


def spec_for(tmp_path, sink, attempts=3):
    return PipelineSpec(
        path=str(tmp_path / "p.toml"), name="restarts", parallelism=2,
        checkpoint=CheckpointSpec(0.01, str(tmp_path / "state"), 3, 60),
        errors=ErrorsSpec("none", str(tmp_path / "dlq")),
        watermark=WatermarkStrategy(), restart=RestartSpec(attempts, 0.0, 0.0),
        source_type="list", source_class=lambda cfg: ListSource(DATA), source_config=None,
        sink_type="flaky", sink_class=lambda cfg: sink, sink_config=None)


def run(spec):
    storage = CheckpointStorage(spec.checkpoint.dir)
    storage.ensure()
    connectors = (spec.source_class(None), spec.sink_class(None))
    return _run_with_restarts(spec, storage, connectors, None, PipelineMetrics(2), _Control(None))


def test_transient_errors_restart_from_the_checkpoint_exactly_once(tmp_path):
    store = CollectStore()
    sink = FlakySink(store, failures=2, error=TransientError)
    result = run(spec_for(tmp_path, sink))
    assert result.status == "finished"
    assert sink.failures == 0
    expected = CollectStore()
    for batches in DATA:
        for b in batches:
            for op, row in zip(b.ops, b.rows()):
                expected.committed.setdefault("x", []).append((b.table, op) + tuple(row))
    assert store.rows() == expected.rows()


def test_terminal_errors_are_not_retried(tmp_path):
    sink = FlakySink(CollectStore(), failures=1, error=TerminalError)
    with pytest.raises(TerminalError):
        run(spec_for(tmp_path, sink))


def test_gives_up_after_the_attempts(tmp_path):
    # every write fails: no checkpoint can complete between two failures
    sink = FlakySink(CollectStore(), failures=100, error=TransientError, every=1)
    with pytest.raises(HubError, match="gave up after 2 restarts"):
        run(spec_for(tmp_path, sink, attempts=2))


class DownAtCheckSink(FlakySink):
    """Its server is still down when the restart checks it: check() fails ``down`` times
    once the first write failed."""

    def __init__(self, store, down):
        super().__init__(store, failures=1, error=TransientError)
        self.down, self.checks = down, 0

    def check(self):
        self.checks += 1
        if self.failures == 0 and self.down:
            self.down -= 1
            raise TransientError("connection refused")


def test_a_server_still_down_at_the_restart_is_retried(tmp_path, capsys):
    sink = DownAtCheckSink(CollectStore(), down=2)
    result = run(spec_for(tmp_path, sink, attempts=5))
    assert result.status == "finished" and sink.down == 0
    err = capsys.readouterr().err
    assert err.count("connection refused: restarting from the latest checkpoint") == 2


def test_a_server_down_at_start_is_retried(tmp_path, capsys):
    sink = DownAtCheckSink(CollectStore(), down=1)
    sink.failures = 0  # no write fails: only the first check
    spec = spec_for(tmp_path, sink)
    storage = CheckpointStorage(spec.checkpoint.dir)
    storage.ensure()
    result = _run_with_restarts(spec, storage, TransientError("connection refused"), None,
                                PipelineMetrics(2), _Control(None))
    assert result.status == "finished"
    assert "connection refused: restarting from the latest checkpoint in 0.0s (attempt 1 of 3)" \
        in capsys.readouterr().err
