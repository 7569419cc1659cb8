"""The delta sink in ``hub run`` (a datagen pipeline): a second start without a checkpoint over
tables an earlier run wrote stops with one line naming them, until the user chooses."""
from __future__ import annotations

import shutil

import pytest

pytest.importorskip("deltalake")

from tests.integration.delta.helpers import read  # noqa: E402
from tests.killing import datagen_pipeline, hub, run_to_end  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.delta]


def test_a_fresh_start_over_earlier_output_asks_for_a_choice(tmp_path):
    lake = tmp_path / "lake"
    path = datagen_pipeline(tmp_path / "pipeline.toml",
                            f'[sink]\ntype = "delta"\npath = "{lake}"\n', name="fresh-delta",
                            state=str(tmp_path / "state"), rows=500, rps=0)
    run_to_end(path)
    first = read(str(lake / "datagen" / "orders"))
    shutil.rmtree(tmp_path / "state")
    p = hub("run", path, "--no-progress")
    _, err = p.communicate(timeout=120)
    assert p.returncode != 0
    line = [ln for ln in err.splitlines() if "already holds output" in ln]
    assert line and f"{lake}/datagen/orders (Delta table" in line[0], err
    assert read(str(lake / "datagen" / "orders")) == first  # nothing written
    p = hub("run", path, "--no-progress", "--keep-output")
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert read(str(lake / "datagen" / "orders")) == first  # upserts of the same rows
