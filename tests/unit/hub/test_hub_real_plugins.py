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


def test_every_bad_format_option_is_reported_with_the_other_bad_options(write: Any) -> None:
    # Two bad format options and one bad sink option: three lines, each with key path and
    # line (the format options are checked even though the sink's own options fail).
    path = write('[pipeline]\nname = "f"\n[source]\ntype = "datagen"\n'
                 '[sink]\ntype = "files"\npath = "./lake"\nrolling-file-size = "huge"\n'
                 'format = "csv"\nformat-options = { delimiter = ";;", quote-chr = "\'" }\n')
    with pytest.raises(ConfigErrors) as info:
        load_pipeline(path, env={})
    assert info.value.lines() == [
        f"{path}:8: sink.rolling-file-size: expected a size like '64KB', '128MB' or '1GB', "
        "got 'huge'",
        f"{path}:10: sink.format-options.delimiter: String should have at most 1 character",
        f"{path}:10: sink.format-options.quote-chr: unknown key; did you mean 'quote-char'?"]


def test_every_bad_option_of_both_kafka_formats_is_reported(write: Any) -> None:
    path = write('[pipeline]\nname = "k"\n[source]\ntype = "datagen"\n'
                 '[sink]\ntype = "kafka"\nbootstrap-servers = "h:9092"\ntopic = "t"\n'
                 'delivery = "sometimes"\nformat = "debezium-json"\nkey-format = "json"\n'
                 '[sink.format-options]\nschema-include = "maybe"\n'
                 '[sink.key-format-options]\nprimary-kei = ["id"]\n')
    with pytest.raises(ConfigErrors) as info:
        load_pipeline(path, env={})
    assert [line.split(": ")[1] for line in info.value.lines()] == [
        "sink.delivery", "sink.format-options.schema-include",
        "sink.key-format-options.primary-kei"]
    assert info.value.lines()[2] == (f"{path}:15: sink.key-format-options.primary-kei: unknown "
                                     "key; did you mean 'primary-key'?")


def test_an_unknown_format_is_reported_with_the_other_bad_options(write: Any) -> None:
    path = write('[pipeline]\nname = "f"\n[source]\ntype = "files"\npath = "./in"\n'
                 'format = "xml"\nbatch-size = 0\n'
                 '[sink]\ntype = "blackhole"\n')
    with pytest.raises(ConfigErrors) as info:
        load_pipeline(path, env={})
    lines = info.value.lines()
    assert lines[0].startswith(f"{path}:6: source.format: unknown format type 'xml'")
    assert lines[1].startswith(f"{path}:7: source.batch-size: Input should be greater than")
    assert len(lines) == 2
