"""Loading and validating pipeline files: every problem, with key path and line."""
from __future__ import annotations

import os
from typing import Any

import pytest

from hub.config import PipelineSpec, load_pipeline
from hub.errors import ConfigErrors
from runtime.extras import install_command

pytestmark = pytest.mark.usefixtures("fake_plugins")

VALID = """\
[pipeline]
name = "demo"
parallelism = 2

[checkpoint]
interval = "1s"
retain = 5

[source]
type = "fake"
table = "db.t"
rows-per-second = 50

[sink]
type = "fake"
path = "./lake"
format = "jsonl"
"""


def problems(path: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        load_pipeline(path, env=env or {})
    lines = str(info.value).splitlines()
    assert lines == info.value.lines()
    return lines


def test_valid_file_gives_spec(write: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    spec = load_pipeline(write(VALID), env={})
    assert isinstance(spec, PipelineSpec)
    assert (spec.name, spec.parallelism) == ("demo", 2)
    assert spec.checkpoint.interval_s == 1.0
    assert spec.checkpoint.retain == 5
    assert spec.checkpoint.timeout_s == 600.0
    assert spec.checkpoint.dir == os.path.join(str(tmp_path), "state", "demo")
    assert spec.errors.tolerance == "none"
    assert spec.errors.dead_letter_path == os.path.join(spec.checkpoint.dir, "dead-letter")
    assert spec.source_type == "fake" and spec.source_class.__name__ == "FakeSource"
    assert spec.source_config.rows_per_second == 50  # type: ignore[attr-defined]
    assert spec.sink_config.format == "jsonl"  # type: ignore[attr-defined]
    assert os.path.isabs(spec.path)


def test_defaults(write: Any) -> None:
    spec = load_pipeline(write('[pipeline]\nname = "p"\n[source]\ntype = "fake"\ntable = "t"\n'
                               '[sink]\ntype = "fake"\npath = "x"\n'), env={})
    assert spec.parallelism == 1
    assert spec.checkpoint.interval_s == 10.0 and spec.checkpoint.retain == 3


def test_malformed_toml_gives_file_and_line(write: Any) -> None:
    path = write('[pipeline]\nname = "demo"\nparallelism = = 2\n')
    [line] = problems(path)
    assert line.startswith(f"{path}:3: invalid TOML: ")
    assert "(at line" not in line


def test_unreadable_file(tmp_path: Any) -> None:
    path = str(tmp_path / "nope.toml")
    [line] = problems(path)
    assert line.startswith(f"{path}: cannot read the file")


def test_unknown_type_suggests_and_lists_known(write: Any) -> None:
    path = write(VALID.replace('type = "fake"\ntable', 'type = "fak"\ntable'))
    [line] = problems(path)
    assert line == (f"{path}:10: source.type: unknown source type 'fak'; did you mean 'fake'? "
                    "(known: fake)")


def test_missing_type(write: Any) -> None:
    path = write(VALID.replace('type = "fake"\npath', 'path'))
    [line] = problems(path)
    assert f"{path}:14: sink: missing key 'type'" in line
    assert "broken, fake, kafkaish, notasink" in line


def test_unknown_key_suggests_and_names_line(write: Any) -> None:
    path = write(VALID.replace('format = "jsonl"', 'formt = "jsonl"'))
    [line] = problems(path)
    assert line == f"{path}:17: sink.formt: unknown key; did you mean 'format'?"


def test_unknown_key_in_builtin_section_and_top_level(write: Any) -> None:
    path = write("name = 'x'\n" + VALID.replace("retain = 5", "retian = 5")
                 + "\n[sinks]\nx = 1\n[[transform]]\nsql = 'x'\n")
    lines = problems(path)
    assert lines == [
        f"{path}:1: name: unknown key; it belongs in [pipeline]",
        f"{path}:8: checkpoint.retian: unknown key; did you mean 'retain'?",
        f"{path}:20: sinks: unknown key; did you mean 'sink'?",
        f"{path}:22: transform[0].source-table: required, but not set",
        f"{path}:23: transform[0].sql: unknown key (known: converter-after-transform, "
        "description, filter, partition-keys, primary-keys, projection, source-table)",
    ]


def test_connector_config_error_is_prefixed_with_section(write: Any) -> None:
    # The fake sink raises ConfigError(key="format-options.bad"), as a connector's check may.
    path = write(VALID.replace('format = "jsonl"', 'format = "jsonl"\nformat-options = { bad = 1 }'))
    assert problems(path) == [f"{path}:18: sink.format-options.bad: no such option"]


def test_unknown_dotted_key_lists_known_keys(write: Any) -> None:
    path = write(VALID + 'checkpoint.intervall = "2s"\n')
    assert problems(path) == [
        f"{path}:18: sink.checkpoint: unknown key (known: format, format-options, "
        "max-file-size, path, rollover)"]


def test_wrong_option_types(write: Any) -> None:
    path = write(VALID.replace("rows-per-second = 50", 'rows-per-second = "lots"')
                 .replace('format = "jsonl"', 'format = "xml"\nmax-file-size = "big"')
                 .replace('interval = "1s"', 'interval = "soon"'))
    lines = problems(path)
    assert lines[0].startswith(f"{path}:6: checkpoint.interval: expected a duration like")
    assert lines[1] == f"{path}:12: source.rows-per-second: Input should be a valid integer, " \
                       "unable to parse string as an integer"
    assert lines[2] == f"{path}:17: sink.format: Input should be 'parquet', 'jsonl' or 'csv'"
    assert lines[3].startswith(f"{path}:18: sink.max-file-size: expected a size like")
    assert not any("Value error" in ln or "http" in ln for ln in lines)


def test_missing_required_option_points_at_its_table(write: Any) -> None:
    path = write(VALID.replace('table = "db.t"\n', ""))
    assert problems(path) == [f"{path}:9: source.table: required, but not set"]


def test_missing_sections(write: Any) -> None:
    path = write("[checkpoint]\nretain = 0\n")
    lines = problems(path)
    assert lines[0] == f"{path}:2: checkpoint.retain: Input should be greater than or equal to 1"
    assert f"{path}: pipeline.name: required, but not set" in lines
    assert any(ln.startswith(f"{path}: source: missing [source] section") for ln in lines)
    assert any(ln.startswith(f"{path}: sink: missing [sink] section") for ln in lines)


def test_bad_pipeline_name(write: Any) -> None:
    path = write(VALID.replace('name = "demo"', 'name = "my demo"'))
    assert problems(path) == [
        f"{path}:2: pipeline.name: use only letters, digits, '_' and '-'"]


def test_env_interpolation(write: Any, tmp_path: Any) -> None:
    text = VALID.replace('path = "./lake"', 'path = "${LAKE}/out"') \
        .replace('retain = 5', 'dir = "${STATE:-/tmp/st}"\nretain = "${KEEP:-4}"')
    spec = load_pipeline(write(text), env={"LAKE": "/data", "KEEP": ""})
    assert spec.sink_config.path == "/data/out"  # type: ignore[attr-defined]
    assert spec.checkpoint.dir == "/tmp/st"
    assert spec.checkpoint.retain == 4  # "${KEEP:-4}" with KEEP empty: the default


def test_env_interpolation_unset_and_escape(write: Any) -> None:
    text = VALID.replace('path = "./lake"', 'path = "${LAKE}/$${NOT}"') \
        .replace('table = "db.t"', 'table = "${ oops }"')
    path = write(text)
    assert problems(path) == [
        f"{path}:11: source.table: malformed reference '${{ oops }}': "
        "write ${NAME} or ${NAME:-default}",
        f"{path}:16: sink.path: environment variable LAKE is not set "
        "(write ${LAKE:-default} to give a default)",
    ]
    spec = load_pipeline(write(VALID.replace('path = "./lake"', 'path = "${LAKE}/$${NOT}"')),
                         env={"LAKE": "/l"})
    assert spec.sink_config.path == "/l/${NOT}"  # type: ignore[attr-defined]


def test_many_problems_reported_together_in_file_order(write: Any) -> None:
    path = write("""\
[pipeline]
name = "demo"
parallelism = 0
[errors]
tolerance = "some"
[source]
type = "fake"
rows-per-second = "x"
colums = ["a"]
[sink]
type = "nope"
""")
    assert problems(path) == [
        f"{path}:3: pipeline.parallelism: Input should be greater than or equal to 1",
        f"{path}:5: errors.tolerance: Input should be 'none' or 'all'",
        f"{path}:6: source.table: required, but not set",
        f"{path}:8: source.rows-per-second: Input should be a valid integer, "
        "unable to parse string as an integer",
        f"{path}:9: source.colums: unknown key; did you mean 'columns'?",
        f"{path}:11: sink.type: unknown sink type 'nope' (known: broken, fake, kafkaish, notasink)",
    ]


def test_plugin_load_failures_are_problem_lines(write: Any) -> None:
    for name, expected in [
        ("broken", "sink.type: the sink plugin 'broken' failed to load: ModuleNotFoundError"),
        ("kafkaish", "sink.type: the Python package 'confluent_kafka' is missing: "
                     f"install it with  {install_command('kafka')}"),
        ("notasink", "sink.type: the plugin 'notasink' is not a sink (Sink)"),
    ]:
        path = write(VALID.replace('type = "fake"\npath', f'type = "{name}"\npath'))
        [line] = problems(path)
        assert line.startswith(f"{path}:15: {expected}"), line


def test_secrets_never_printed(write: Any) -> None:
    text = VALID.replace('table = "db.t"', 'table = "db.t"\npassword = "${PW}"\nrows = 1')
    with pytest.raises(ConfigErrors) as info:
        load_pipeline(write(text), env={"PW": "s3cret-value"})
    assert "s3cret" not in str(info.value)
    spec = load_pipeline(write(VALID.replace('table = "db.t"', 'table = "db.t"\npassword = "${PW}"')),
                         env={"PW": "s3cret-value"})
    assert "s3cret" not in repr(spec)
    assert spec.source_config.password.get_secret_value() == "s3cret-value"  # type: ignore[attr-defined]


def test_section_that_is_not_a_table(write: Any) -> None:
    path = write('pipeline = "demo"\n' + VALID.split("\n", 3)[3])
    lines = problems(path)
    assert lines[0] == f"{path}:1: pipeline: must be a table: write [pipeline] and put its keys below it"


def test_skip_records_are_record_ids(write: Any) -> None:
    spec = load_pipeline(write(VALID + '[errors]\nskip-records = ["D38A0144B7673D9F"]\n'), env={})
    assert spec.errors.skip_records == frozenset({"d38a0144b7673d9f"})
    lines = problems(write(VALID + '[errors]\nskip-records = ["d38a0144", "ok"]\n'))
    assert len(lines) == 1
    assert "errors.skip-records" in lines[0] and "'d38a0144' is not a record id" in lines[0]
