"""Exactly once of the Kafka sink when checkpoints are aborted, proven with kill -9: the
writer takes its prepared transaction over (re-sends its records first thing in its next
transaction) and commits both together once that one's checkpoint is stored (see
:mod:`sinks.kafka.transactions`).
The process is killed at each phase of that path, and at random moments while checkpoints
are being aborted; after a restart, every key's committed records in the topics equal those
of a run that never failed: each record once, in order.

Checkpoints are aborted on purpose: the sink subtasks acknowledge them only after
``checkpoint.timeout`` (``HUB_DELAY_AT``, :mod:`runtime.faults`).  What a read_committed
consumer sees is read from the log, telling committed from aborted records by the
transaction markers, and compared with what a read_committed consumer sees.
"""
from __future__ import annotations

import re

import pytest

from tests.integration.kafka.helpers import (assert_committed_as, committed_by_key,
                                             exactly_once_sink)
from tests.killing import (crash_at, datagen_pipeline, kill_at_random, latest_checkpoint,
                           run_to_end, run_to_end_resuming)

pytestmark = [pytest.mark.integration, pytest.mark.kafka, pytest.mark.e2e]

ROWS = 6_000
#: checkpoint.timeout: short, as checkpoints are aborted on purpose, yet long enough for a
#: loaded 2-core machine to complete the others (a writer taking over waits up to it, so a
#: tighter one aborts the next checkpoints in a row, as long as data flows)
TIMEOUT_S = 1.0
TABLES = ("orders", "customers")


def abort(checkpoint_id: int) -> dict[str, str]:
    """The environment in which checkpoint ``checkpoint_id`` is aborted: its sink subtasks
    acknowledge it after it timed out, and their next records make them take its
    transaction over."""
    return {"HUB_DELAY_AT": f"sink-ack:{checkpoint_id}:{TIMEOUT_S + 0.5}"}


def restart(path: str, d) -> str:
    """Run the pipeline to its end, taking a transaction over again (a checkpoint aborted
    well after the one it resumes from, while data flows); returns its log.  The rest of the
    data comes slower (datagen's rows do not depend on the rate), so that it still flows at
    that checkpoint: were it the run's final one, its delayed acknowledgement would fail
    the run."""
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(re.sub(r"rows-per-second = \d+", "rows-per-second = 2000", text))
    err = run_to_end_resuming(path, env=abort(latest_checkpoint(str(d / "state")) + 3))
    assert "resuming from checkpoint" in err
    assert "records of the transaction taken over sent again" in err, err[-3000:]
    return err


def pipeline(d, kafka_server, rps: int) -> tuple[str, str]:
    prefix = kafka_server.create_topic(partitions=1)  # a unique name (and an unused topic)
    for table in TABLES:
        kafka_server.create_topic(f"{prefix}-{table}", partitions=3)
    sink = exactly_once_sink(kafka_server, prefix + "-{name}", prefix)
    path = datagen_pipeline(d / "p.toml", sink, name="takeover", state=str(d / "state"),
                            rows=ROWS, rps=rps, timeout=f"{TIMEOUT_S}s")
    # the aborted checkpoint slows the next ones (each writer waits up to the timeout before
    # taking over): several fail in a row, and a restart for that would skip the path tested
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace("[checkpoint]\n", "[checkpoint]\ntolerable-failures = 1000\n", 1))
    return path, prefix


def assert_as_reference(kafka_server, prefix: str, reference: dict) -> None:
    for table in TABLES:
        assert_committed_as(kafka_server, f"{prefix}-{table}", reference[table])


@pytest.fixture(scope="module")
def reference(kafka_server, tmp_path_factory):
    """Every key's records of a run that never failed (and no checkpoint aborted)."""
    path, prefix = pipeline(tmp_path_factory.mktemp("takeover-ref"), kafka_server, 0)
    run_to_end(path)
    out = {t: committed_by_key(kafka_server, f"{prefix}-{t}") for t in TABLES}
    assert sum(len(v) for ref in out.values() for v in ref.values()) >= 2 * ROWS
    return out


@pytest.mark.parametrize("point, after", [
    # the writer re-sent checkpoint 2's records in its next transaction, not yet prepared
    ("kafka-resent", ""),
    # that transaction is prepared (with the marker for both), its checkpoint not stored
    ("kafka-prepared-taken-over", ""),
    # its checkpoint is stored (carrying checkpoint 2): the writer is about to commit both
    # together; at the restart, both are re-sent from the write-ahead log in order
    ("kafka-commit-taken-over", "re-sending"),
    # both committed in Kafka, the committer has not confirmed it
    ("kafka-committed-taken-over", "was committed already"),
])
def test_crash_at_each_phase_of_taking_over(kafka_server, reference, tmp_path, point, after):
    path, prefix = pipeline(tmp_path, kafka_server, 4_000)
    crash_at(path, point, 2, env=abort(2))
    err = restart(path, tmp_path)
    assert_as_reference(kafka_server, prefix, reference)
    assert after in err, err[-3000:]


def test_crash_while_recovering_a_taken_over_checkpoint(kafka_server, reference, tmp_path):
    """Killed before the writer commits checkpoint 2 with its successor, and again while
    the restart re-sends them: right after checkpoint 2 went again, before its successor."""
    path, prefix = pipeline(tmp_path, kafka_server, 4_000)
    crash_at(path, "kafka-commit-taken-over", 2, env=abort(2))
    crash_at(path, "kafka-resent-by-marker", 2)
    err = restart(path, tmp_path)
    assert_as_reference(kafka_server, prefix, reference)
    assert "checkpoint 2 (subtask" in err and "was committed already" in err, err[-3000:]


def test_kill_9_at_random_moments_while_checkpoints_are_aborted(kafka_server, reference,
                                                                 tmp_path):
    path, prefix = pipeline(tmp_path, kafka_server, 3_000)
    # every third checkpoint aborted: transactions taken over all the time
    aborts = {"HUB_DELAY_AT": "sink-ack:" + ",".join(map(str, range(2, 400, 3)))
              + f":{TIMEOUT_S + 0.2}"}
    kill_at_random(path, str(tmp_path / "state"), times=4, between=(0.0, 1.2), env=aborts)
    restart(path, tmp_path)
    assert_as_reference(kafka_server, prefix, reference)
