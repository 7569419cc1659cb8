"""The README's quickstart as a new user runs it: examples/quickstart.toml from a folder of
their own, into Delta tables holding each table's current state, read back as the run says."""
from __future__ import annotations

import shlex
import subprocess
import sys

import pytest

from tests.killing import run_to_end

pytestmark = pytest.mark.e2e

pl = pytest.importorskip("polars")


def test_quickstart_lands_current_state_and_says_how_to_read_it(tmp_path):
    # fixed event times (the quickstart's start at the wall clock), so two runs agree
    text = open("examples/quickstart.toml").read()
    text = text.replace('type = "datagen"', 'type = "datagen"\nevent-time-start = "2026-11-24T10:00:00Z"')
    (tmp_path / "quickstart.toml").write_text(text)
    err = run_to_end("quickstart.toml", cwd=str(tmp_path))
    [hint] = [ln for ln in err.splitlines() if ln.startswith("hub: read it: ")]
    argv = shlex.split(hint.removeprefix("hub: read it: "))
    assert argv[1] == "-c" and "pl.read_delta" in argv[2]
    shown = subprocess.run([sys.executable, "-c", argv[2]], cwd=tmp_path, capture_output=True,
                           text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr

    # the same changes as change rows: folded by key in source order they give the state
    changes = tmp_path / "changes.toml"
    changes.write_text((tmp_path / "quickstart.toml").read_text()
                       .replace('name = "quickstart"', 'name = "changes"')
                       .replace("./state/quickstart", "./state/changes")
                       .replace('path = "./lake"', 'path = "./changes"\nwrite-mode = "append"'))
    run_to_end("changes.toml", cwd=str(tmp_path))
    for table in ("orders", "customers"):
        state = pl.read_delta(str(tmp_path / "lake" / "datagen" / table))
        rows = pl.read_delta(str(tmp_path / "changes" / "datagen" / table))
        key = state.columns[0]
        expected = (rows.sort("seq").group_by(key, maintain_order=True).last()
                    .filter(pl.col("op") != "d").drop("op", "ts_ms", "seq"))
        assert state.height > 100_000
        assert state.sort(key).equals(expected.select(state.columns).sort(key))

    again = run_to_end("quickstart.toml", cwd=str(tmp_path))
    assert "resuming from checkpoint" in again and "0 rows written" in again
