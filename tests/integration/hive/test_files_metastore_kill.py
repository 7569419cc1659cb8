"""Exactly once with the metastore policy, proven with kill -9: datagen -> files (parquet,
minute partitions) with partition-commit-policy = ["success-file", "metastore"], killed at
random moments and between a partition's _SUCCESS and its metastore partition, ends with the
lake of a run that never failed, and the metastore lists exactly the partitions that have
_SUCCESS: every partition once, none missing.  The seq column orders each key's changes as
the source made them."""
from __future__ import annotations

import os
import signal

import pyarrow.dataset as ds
import pytest

from tests.e2e.lake import hidden_files, lake_rows
from tests.killing import datagen_pipeline, hub, kill_at_random, run_to_end

pytestmark = [pytest.mark.integration, pytest.mark.hive]

SINK = """\
[sink]
type = "files"
path = "{lake}"
format = "parquet"
partition-format = "dt=%Y-%m-%d/hr=%H/mi=%M"
partition-commit-policy = ["success-file", "metastore"]
metastore-uri = "{uri}"
metastore-database = "{db}"
metastore-table = "{{db}}_{{table}}"
"""

ROWS = 20_000


def _pipeline(d, hms, db: str, rps: int) -> str:
    sink = SINK.format(lake=d / "lake", uri=hms.uri, db=db)
    return datagen_pipeline(d / "pipeline.toml", sink, name="hms-kill", state=str(d / "state"),
                            rows=ROWS, rps=rps, batch_size=200)


def _success_partitions(lake) -> dict[str, list[str]]:
    """metastore table name -> sorted partition folders holding _SUCCESS."""
    out: dict[str, list[str]] = {}
    for d, _dirs, files in os.walk(lake):
        rel = os.path.relpath(d, lake).split(os.sep)
        if len(rel) == 5:
            out.setdefault(f"{rel[0]}_{rel[1]}", [])
            if "_SUCCESS" in files:
                out[f"{rel[0]}_{rel[1]}"].append("/".join(rel[2:]))
    return {t: sorted(p) for t, p in out.items()}


def _check_metastore(hms, db: str, lake) -> None:
    success = _success_partitions(lake)
    assert set(success) == {"datagen_orders", "datagen_customers"}
    for table, parts in success.items():
        assert len(parts) > 3, parts  # several minutes of event time, all complete at the end
        assert hms.partition_names(db, table) == parts, table


def _check_seq(lake) -> None:
    """Per table and key, the changes sorted by seq are the changes sorted by event time
    (datagen's event times are unique and increase in source order)."""
    for table in ("orders", "customers"):
        t = ds.dataset(f"{lake}/datagen/{table}", format="parquet",
                       partitioning="hive").to_table(columns=["id", "ts_ms", "seq"])
        by_seq = t.sort_by([("id", "ascending"), ("seq", "ascending")])
        by_ts = t.sort_by([("id", "ascending"), ("ts_ms", "ascending")])
        assert by_seq.column("ts_ms").equals(by_ts.column("ts_ms")), table
        seq = by_seq.column("seq").to_numpy()
        same_key = by_seq.column("id").to_numpy()[1:] == by_seq.column("id").to_numpy()[:-1]
        assert (seq[1:][same_key] > seq[:-1][same_key]).all(), table  # no ties


@pytest.fixture(scope="module")
def reference(tmp_path_factory, hive_metastore):
    d = tmp_path_factory.mktemp("reference")
    run_to_end(_pipeline(d, hive_metastore, "hms_kill_ref", rps=0))
    _check_metastore(hive_metastore, "hms_kill_ref", d / "lake")
    _check_seq(d / "lake")
    return lake_rows(str(d / "lake"))


def test_crash_between_success_file_and_metastore(tmp_path, reference, hive_metastore,
                                                  hive_db):
    pipeline = _pipeline(tmp_path, hive_metastore, hive_db, rps=20_000)
    # at the first partition committed, whichever checkpoint that is on a loaded machine
    p = hub("run", pipeline, "--no-progress", env={"HUB_CRASH_AT": "files-success-written"})
    err = p.communicate(timeout=120)[1]
    assert p.returncode == -signal.SIGKILL, f"crash point not reached: {err}"
    assert "resuming from checkpoint" in run_to_end(pipeline)
    assert lake_rows(str(tmp_path / "lake")) == reference
    assert hidden_files(str(tmp_path / "lake")) == []
    _check_metastore(hive_metastore, hive_db, tmp_path / "lake")


def test_kill_9_at_random_moments(tmp_path, reference, hive_metastore, hive_db):
    pipeline = _pipeline(tmp_path, hive_metastore, hive_db, rps=20_000)
    kill_at_random(pipeline, str(tmp_path / "state"), times=3, between=(0.0, 0.8))
    assert "resuming from checkpoint" in run_to_end(pipeline)
    assert lake_rows(str(tmp_path / "lake")) == reference
    assert hidden_files(str(tmp_path / "lake")) == []
    _check_metastore(hive_metastore, hive_db, tmp_path / "lake")
    _check_seq(tmp_path / "lake")
