"""Files sink: options, their validation, the fail-fast check and the plugin entry point."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import ValidationError

from runtime import plugins
from runtime.errors import HubError
from sink_helpers import FORMAT, files_sink
from sinks.files.config import FilesSinkConfig
from sinks.files.sink import FilesSink


def test_defaults(root: Path) -> None:
    c = FilesSinkConfig.model_validate({"path": str(root), "format": FORMAT})
    assert c.rolling_file_size == 128 * 1024 * 1024
    assert c.rolling_interval == 900.0
    assert (c.partition_format, c.partition_time_column) == (None, None)
    assert c.partition_time_zone == "UTC"
    assert c.success_file is True
    assert c.file_format.name == FORMAT
    assert all(f.description for f in FilesSinkConfig.model_fields.values())


def test_kebab_case_options(root: Path) -> None:
    c = FilesSinkConfig.model_validate({"path": str(root), "format": FORMAT,
                                        "rolling-file-size": "1MB", "rolling-interval": "30s",
                                        "partition-format": "dt=%Y-%m-%d", "success-file": False})
    assert (c.rolling_file_size, c.rolling_interval, c.success_file) == (1 << 20, 30.0, False)


def test_unknown_format_names_the_key(root: Path) -> None:
    with pytest.raises(ValidationError) as err:
        FilesSinkConfig.model_validate({"path": str(root), "format": "nope"})
    assert [e["loc"] for e in err.value.errors()] == [("format",)]


@pytest.mark.parametrize("options", [
    {"partition-format": "no directives"}, {"partition-format": "/abs/%Y"},
    {"partition-format": "../%Y"}, {"partition-time-zone": "Mars/Olympus"},
    {"rolling-file-size": 0}, {"rolling-interval": "soon"}, {"unknown": 1}, {},
    {"partition-time-column": "created_at"},
])
def test_bad_options_are_refused(root: Path, options: dict) -> None:
    base = {"path": str(root), "format": FORMAT} if options else {"format": FORMAT}
    with pytest.raises(ValidationError):
        FilesSinkConfig.model_validate({**base, **options})


def test_check_creates_the_path(root: Path) -> None:
    files_sink(root / "a" / "b").check()
    assert (root / "a" / "b").is_dir()
    assert os.listdir(root / "a" / "b") == []


def test_check_of_an_uncreatable_path_names_it(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(HubError) as err:
        files_sink(blocker / "lake").check()
    message = str(err.value)
    assert str(blocker / "lake") in message and "\n" not in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_check_of_a_read_only_path_names_it(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(HubError, match="is not writable"):
            files_sink(tmp_path / "lake").check()
    finally:
        tmp_path.chmod(0o700)


def test_entry_points() -> None:
    assert plugins.load("sink", "files") is FilesSink
    assert FilesSink.config_class is FilesSinkConfig
