"""Tiny plugins of our own, registered through fake entry points, so the hub shell is tested
without depending on the real connectors (which have tests of their own)."""
from __future__ import annotations

import sys
import types
from importlib.metadata import EntryPoint
from typing import Any, Literal

import pytest
from pydantic import Field, SecretStr, model_validator

from runtime import plugins
from runtime.config import ConnectorConfig, Duration, Size
from runtime.errors import ConfigError
from runtime.sink import Sink
from runtime.source import Source

MODULE = "hubtest_plugins"


class FakeSourceConfig(ConnectorConfig):
    summary = "Rows out of thin air."

    table: str = Field(description="Table to emit.")
    rows_per_second: int = Field(100, ge=1, description="Rows emitted per second.")
    interval: Duration = Field(1.0, description="Pause between batches.")
    password: SecretStr = Field(SecretStr("default-secret"), description="A secret.")
    columns: list[str] = Field(default_factory=list, description="Column names.")


class FakeSource(Source):  # abstract methods left out: the loader never instantiates
    """A fake source.  Second line."""

    config_class = FakeSourceConfig


class FakeSinkConfig(ConnectorConfig):
    path: str = Field(description="Output folder.")
    format: Literal["parquet", "jsonl", "csv"] = Field("parquet", description="File format.")
    format_options: dict[str, Any] = Field(default_factory=dict, description="Format options.")
    max_file_size: Size = Field(128 * 1024 * 1024, description="Roll at this size.")
    rollover: Duration | None = Field(None, description="Roll after this time.")

    @model_validator(mode="after")
    def _check_format(self) -> FakeSinkConfig:
        # As a connector's own check may: a key relative to the connector's table.
        if "bad" in self.format_options:
            raise ConfigError("no such option", key="format-options.bad")
        return self


class FakeSink(Sink):
    """A fake sink."""

    config_class = FakeSinkConfig


class NotASink:
    config_class = FakeSinkConfig


ENTRY_POINTS = {
    "source": {"fake": f"{MODULE}:FakeSource"},
    "sink": {"fake": f"{MODULE}:FakeSink", "notasink": f"{MODULE}:NotASink",
             "broken": "hubtest_no_such_module:Sink", "kafkaish": "confluent_kafka:Sink"},
    "format": {},
}


@pytest.fixture
def fake_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType(MODULE)
    for cls in (FakeSource, FakeSink, NotASink):
        setattr(module, cls.__name__, cls)
    monkeypatch.setitem(sys.modules, MODULE, module)
    # None in sys.modules makes the import fail as if the extra were not installed.
    monkeypatch.setitem(sys.modules, "confluent_kafka", None)

    def available(kind: str) -> dict[str, EntryPoint]:
        return {name: EntryPoint(name, value, plugins.GROUPS[kind])
                for name, value in ENTRY_POINTS[kind].items()}

    monkeypatch.setattr(plugins, "available", available)


@pytest.fixture
def write(tmp_path: Any) -> Any:
    """Write a pipeline file and return its path."""
    def write(text: str, name: str = "pipeline.toml") -> str:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return str(path)
    return write
