"""The MySQL source's typed splits and their versioned serializer: checkpoints written before
the serializer had a version (stored examples, tests/unit/mysql/checkpoints_v0) are still read;
what this version writes carries its version, and reads back equal; split values and
checkpointed enumerator state don't change after they were handed to a checkpoint."""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pytest

from runtime.errors import TerminalError
from sources.mysql.config import MySqlSourceConfig
from sources.mysql.enumerator import MySqlEnumerator
from sources.mysql.offset import BinlogOffset
from sources.mysql.source import MySqlSource
from sources.mysql.split import (VERSION, BinlogSplit, BinlogSplitState, FoldProgress,
                                 PendingDdl, ReflectedChunk, SnapshotSplit, split_from_dict,
                                 split_to_dict)
from sources.mysql.state import Fold, SplitterPosition, state_from_dict, state_to_dict

HERE = Path(__file__).parent
V0 = sorted((HERE / "checkpoints_v0").glob("*.json"))
V1 = HERE / "checkpoints_v1"


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _splits(source_state: dict) -> list:
    return [MySqlSource.split_type.from_dict(d) for r in source_state["readers"] for d in r]


def _through_json(d: dict) -> dict:
    return json.loads(json.dumps(d))


def test_there_are_stored_examples():
    assert len(V0) >= 8


@pytest.mark.parametrize("path", V0, ids=[p.name for p in V0])
def test_unversioned_checkpoints_of_main_are_read(path):
    src = _load(path)
    for d in (d for r in src["readers"] for d in r):
        split = MySqlSource.split_type.from_dict(d)
        assert split.split_id == d["split_id"]
        if d["kind"] == "snapshot":
            assert isinstance(split, SnapshotSplit)
            assert split.table.table_id == d["table"]["schema"]["table"]
            assert split.finished == d["finished"]
            assert (split.high is None) == (d["high"] is None)
        else:
            assert isinstance(split, BinlogSplit)
            assert split.offset == BinlogOffset.from_dict(d["offset"])
            assert set(split.tables) == set(d["tables"])
            assert len(split.chunks) == len(d["chunks"])
            assert all(isinstance(c, ReflectedChunk) and c.high is not None for c in split.chunks)
        # and what this version writes of it reads back the same
        assert split_from_dict(_through_json(split_to_dict(split))) == split
    state = state_from_dict(src["enumerator"])
    assert set(state.tables) == set(src["enumerator"]["tables"])
    assert state_from_dict(_through_json(state_to_dict(state))) == state


def test_chunk_keys_of_every_type_come_back_typed():
    splits = _splits(_load(HERE / "checkpoints_v0" / "chk-4.json"))
    b = next(s for s in splits if isinstance(s, SnapshotSplit) and s.table_id.endswith(".b")
             and s.start is not None)
    k, d, n = b.start
    assert isinstance(k, str) and isinstance(d, dt.datetime) and isinstance(n, Decimal)
    binlog = _load(HERE / "checkpoints_v0" / "chk-4.json")["enumerator"]["binlog"]
    split = split_from_dict(binlog)
    assert any(c.table.endswith(".b") and c.end is not None and isinstance(c.end[1], dt.datetime)
               for c in split.chunks)


def test_unversioned_pending_ddl_fold_and_skip_rows_are_read():
    src = _load(HERE / "checkpoints_v0" / "edited-ddl-fold-pending.json")
    binlog = next(s for s in _splits(src) if isinstance(s, BinlogSplit))
    assert binlog.offset.skip_rows == 7
    (table, entries), = binlog.ddl.items()
    assert entries == (PendingDdl("alter", "ALTER TABLE a ADD COLUMN w INT", 1796605775000,
                                  BinlogOffset("mysql-bin.000001", 19000, "0-1-30")),)
    assert binlog.fold == FoldProgress(BinlogOffset("mysql-bin.000001", 21000, "0-1-40"),
                                       (sorted(binlog.tables)[-1],))
    state = state_from_dict(src["enumerator"])
    assert [p.split_id for p in state.pending] == [src["enumerator"]["pending"][0]["split_id"]]
    assert isinstance(state.fold, Fold) and all(isinstance(c, ReflectedChunk)
                                                for c in state.fold.chunks)


def test_an_unversioned_enumerator_state_restores_an_enumerator():
    src = _load(HERE / "checkpoints_v0" / "chk-2.json")
    config = MySqlSourceConfig.model_validate({"hostname": "h", "username": "u",
                                               "tables": ["t_e8ce378d45\\..*"]})
    en = MySqlEnumerator(None, config, src["enumerator"])  # type: ignore[arg-type]
    assert en.restored and set(en.tables) == set(src["enumerator"]["tables"])
    assert en.splitting["t_e8ce378d45.a"] == SplitterPosition((64,), 4)
    assert all(isinstance(c.high, BinlogOffset) for c in en.finished.values())
    assert en.start_offset == BinlogOffset.from_dict(src["enumerator"]["start"])


def test_this_version_writes_its_version_and_refuses_newer_ones():
    split = next(s for s in _splits(_load(HERE / "checkpoints_v0" / "chk-5.json"))
                 if isinstance(s, BinlogSplit))
    d = split_to_dict(split)
    assert d["version"] == VERSION
    with pytest.raises(TerminalError, match="newer version"):
        split_from_dict({**d, "version": VERSION + 1})
    state = state_to_dict(state_from_dict(_load(HERE / "checkpoints_v0" / "chk-5.json")["enumerator"]))
    assert state["version"] == VERSION
    with pytest.raises(TerminalError, match="newer version"):
        state_from_dict({**state, "version": VERSION + 1})


@pytest.mark.parametrize("path", V0, ids=[p.name for p in V0])
def test_stored_version_1_checkpoints_are_read(path):
    """What this version wrote (checkpoints_v1, the v0 examples written by it) is read back
    equal: the next version keeps this test with its own VERSION."""
    v1 = _load(V1 / path.name)
    v0 = _load(path)
    assert all(d["version"] == 1 for r in v1["readers"] for d in r)
    assert _splits(v1) == _splits(v0)
    assert state_from_dict(v1["enumerator"]) == state_from_dict(v0["enumerator"])


# -- immutability -----------------------------------------------------------------------------
def _binlog() -> BinlogSplit:
    src = _load(HERE / "checkpoints_v0" / "edited-ddl-fold-pending.json")
    return next(s for s in _splits(src) if isinstance(s, BinlogSplit))


def test_splits_are_frozen():
    split = _binlog()
    with pytest.raises(dataclasses.FrozenInstanceError):
        split.offset = BinlogOffset("x.000001", 4)  # type: ignore[misc]
    with pytest.raises(TypeError):
        split.tables["db.x"] = None  # type: ignore[index]


def test_a_checkpointed_binlog_split_does_not_follow_the_reader():
    state = BinlogSplitState(_binlog())
    before = state.to_split()
    kept = split_to_dict(before)
    name = next(iter(before.tables))
    state.update_tables({name: None})
    state.offset = BinlogOffset("mysql-bin.000009", 4)
    state.chunks = ()
    state.ddl = {}
    after = state.to_split()
    assert name in before.tables and name not in after.tables
    assert split_to_dict(before) == kept
    assert after.offset == BinlogOffset("mysql-bin.000009", 4) and not after.chunks


def test_checkpointed_enumerator_state_does_not_follow_the_enumerator():
    src = _load(HERE / "checkpoints_v0" / "chk-2.json")
    config = MySqlSourceConfig.model_validate({"hostname": "h", "username": "u",
                                               "tables": ["t_e8ce378d45\\..*"]})
    en = MySqlEnumerator(None, config, src["enumerator"])  # type: ignore[arg-type]
    kept = en.snapshot_state(3)
    copy_of_kept = json.loads(json.dumps(kept))
    en.splitting["t_e8ce378d45.a"] = SplitterPosition((80,), 5)
    en.assigned.append("t_e8ce378d45.a#4")
    en.finished.clear()
    en.tables.clear()
    assert kept == copy_of_kept
