"""The loader against the connectors really installed."""
from __future__ import annotations

from typing import Any

import pytest

from hub.cli import main
from hub.config import load_pipeline
from hub.errors import ConfigErrors




def test_datagen_to_blackhole(write: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = write('[pipeline]\nname = "bh"\n[source]\ntype = "datagen"\nrows = 10\n'
                 '[sink]\ntype = "blackhole"\n')
    spec = load_pipeline(path, env={})
    assert (spec.source_type, spec.sink_type) == ("datagen", "blackhole")
    assert main(["validate", path]) == 0
    assert capsys.readouterr().out == "ok: bh: source datagen -> sink blackhole\n"


def test_files_sink_format_errors_are_prefixed(write: Any) -> None:
    path = write('[pipeline]\nname = "f"\n[source]\ntype = "datagen"\nrows-per-secnd = 1\n'
                 '[sink]\ntype = "files"\npath = "./lake"\nformat = "parqet"\n')
    with pytest.raises(ConfigErrors) as info:
        load_pipeline(path, env={})
    lines = info.value.lines()
    assert lines[0] == f"{path}:5: source.rows-per-secnd: unknown key; did you mean 'rows-per-second'?"
    assert lines[1].startswith(f"{path}:9: sink.format: unknown format type 'parqet'; "
                               "did you mean 'parquet'?")


def test_files_sink_with_real_format(write: Any) -> None:
    path = write('[pipeline]\nname = "f"\n[source]\ntype = "datagen"\n'
                 '[sink]\ntype = "files"\npath = "./lake"\nformat = "jsonl"\n')
    assert load_pipeline(path, env={}).sink_type == "files"
