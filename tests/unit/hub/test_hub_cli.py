"""The ``hub`` command: exit codes and what reaches stdout/stderr."""
from __future__ import annotations

import argparse
import sys
import types
from typing import Any

import pytest

import hub
from hub.cli import main
from runtime.errors import HubError
from runtime.executor.failure import locate

pytestmark = pytest.mark.usefixtures("fake_plugins")

VALID = """\
[pipeline]
name = "demo"
[source]
type = "fake"
table = "t"
[sink]
type = "fake"
path = "./lake"
"""


def test_validate_ok(write: Any, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", write(VALID)]) == 0
    out, err = capsys.readouterr()
    assert out == "ok: demo: source fake -> sink fake\n"
    assert err == ""


def test_validate_bad_one_line_per_problem(write: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(VALID.replace('table = "t"', 'tabel = "t"').replace('path = "./lake"',
                                                                     'path = 3\nformt = "csv"'))
    assert main(["validate", path]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        f"{path}:3: source.table: required, but not set",
        f"{path}:5: source.tabel: unknown key; did you mean 'table'?",
        f"{path}:8: sink.path: Input should be a valid string",
        f"{path}:9: sink.formt: unknown key; did you mean 'format'?",
    ]
    assert "Traceback" not in err


def test_validate_malformed_toml(write: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = write("[pipeline\n")
    assert main(["validate", path]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"{path}:1: invalid TOML")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["frobnicate"]) == 2
    assert main(["run", "x.toml", "--fresh", "--from-savepoint", "d"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("hub ")


def test_plugins_listing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "sources:" in out and "sinks:" in out
    assert "  fake  - Rows out of thin air." in out
    assert "rows-per-second" in out and "default 100" in out
    assert "  broken  BROKEN: ModuleNotFoundError" in out
    assert "  kafkaish  not installed: the Python package 'confluent_kafka' is missing" in out
    assert "default-secret" not in out
    assert main(["plugins", "--kind", "source"]) == 0
    out = capsys.readouterr().out
    assert "sinks:" not in out and "sources:" in out


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A stand-in for hub.runner (written elsewhere); records its calls."""
    calls: dict[str, Any] = {}
    module = types.ModuleType("hub.runner")

    def run(spec: Any, args: argparse.Namespace) -> int | None:
        calls["run"] = (spec, args)
        return calls.get("result")

    def savepoint(spec: Any, args: argparse.Namespace) -> int | None:
        calls["savepoint"] = (spec, args)
        return 0

    module.run = run  # type: ignore[attr-defined]
    module.savepoint = savepoint  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "hub.runner", module)
    monkeypatch.setattr(hub, "runner", module, raising=False)
    return calls


def test_run_hands_spec_and_args_to_runner(write: Any, runner: dict[str, Any]) -> None:
    path = write(VALID)
    assert main(["run", path, "--fresh", "--no-progress"]) == 0
    spec, args = runner["run"]
    assert spec.name == "demo"
    assert (args.fresh, args.no_progress, args.from_savepoint, args.stop_with_savepoint) == \
        (True, True, None, None)
    main(["run", path, "--stop-with-savepoint"])
    assert runner["run"][1].stop_with_savepoint == ""
    main(["run", path, "--from-savepoint", "sp1", "--stop-with-savepoint", "sp2"])
    assert (runner["run"][1].from_savepoint, runner["run"][1].stop_with_savepoint) == ("sp1", "sp2")
    runner["result"] = 3
    assert main(["run", path]) == 3
    assert main(["savepoint", path, "--name", "before-upgrade"]) == 0
    assert runner["savepoint"][1].name == "before-upgrade"


def test_run_with_bad_config_never_reaches_runner(write: Any, runner: dict[str, Any],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", write(VALID.replace("fake", "fak", 1))]) == 2
    assert "run" not in runner
    assert "did you mean 'fake'?" in capsys.readouterr().err


@pytest.mark.parametrize("exc, code, first_line", [
    (HubError("sink is gone"), 1, "error: sink is gone"),
    (KeyboardInterrupt(), 130, "interrupted"),
    (RuntimeError("boom"), 1, "internal error: RuntimeError: boom"),
    (locate(ConnectionResetError("gone"), "sink-1 (sinks.jdbc writer)"), 1,
     "internal error in sink-1 (sinks.jdbc writer): ConnectionResetError: gone"),
])
def test_error_mapping(write: Any, runner: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                       capsys: pytest.CaptureFixture[str], exc: BaseException, code: int,
                       first_line: str) -> None:
    def fail(spec: Any, args: Any) -> None:
        raise exc

    monkeypatch.setattr(sys.modules["hub.runner"], "run", fail)
    monkeypatch.delenv("HUB_DEBUG", raising=False)
    assert main(["run", write(VALID)]) == code
    err = capsys.readouterr().err
    assert err.splitlines()[0] == first_line
    assert "Traceback" not in err


def test_traceback_only_with_hub_debug(write: Any, runner: dict[str, Any],
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    def fail(spec: Any, args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(sys.modules["hub.runner"], "run", fail)
    monkeypatch.setenv("HUB_DEBUG", "1")
    assert main(["run", write(VALID)]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_plugins_name_shows_one_plugin(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "fake"]) == 0
    out = capsys.readouterr().out
    assert "  fake  - Rows out of thin air." in out and "rows-per-second" in out
    assert "kafkaish" not in out and "[checkpoint]" not in out
    assert main(["plugins", "fak"]) == 2
    assert "did you mean 'fake'?" in capsys.readouterr().err


def test_plugins_lists_the_pipeline_sections_with_defaults(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "pipeline sections:" in out
    for section in ("[pipeline]", "[checkpoint]", "[errors]", "[watermark]", "[restart]"):
        assert f"  {section}  - " in out
    assert main(["plugins", "checkpoint"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("pipeline sections:\n  [checkpoint]")
    assert 'default "10s"' in out and "tolerable-failures" in out
    assert main(["plugins", "--kind", "section", "[restart]"]) == 0
    assert "max-delay" in capsys.readouterr().out


@pytest.mark.parametrize("columns", [40, 60, 100, 200])
def test_plugins_wrap_to_the_terminal(columns: int, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))  # what shutil.get_terminal_size reads first
    assert main(["plugins"]) == 0
    lines = capsys.readouterr().out.splitlines()
    # Only a single word longer than the width may overflow (none here).
    assert max(len(line) for line in lines) <= columns
    if columns >= 100:  # wide enough: descriptions beside their option
        assert any("rows-per-second" in line and "Rows emitted" in line for line in lines)
