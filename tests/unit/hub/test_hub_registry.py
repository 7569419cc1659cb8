"""Listing installed plugins and their options."""
from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, Field

from hub.registry import OptionInfo, describe_options, describe_type, list_plugins
from runtime.config import ConnectorConfig, Duration, Size
from runtime.extras import install_command


@pytest.mark.usefixtures("fake_plugins")
def test_lists_plugins_with_typed_options() -> None:
    infos = {(i.kind, i.name): i for i in list_plugins()}
    source = infos["source", "fake"]
    assert source.summary == "Rows out of thin air."
    assert source.error is None
    opts = {o.name: o for o in source.options}
    assert opts["table"] == OptionInfo("table", "str", "required", True, "Table to emit.")
    assert opts["rows-per-second"] == OptionInfo("rows-per-second", "int", "100", False,
                                                 "Rows emitted per second.")
    assert (opts["interval"].type, opts["interval"].default) == ("duration", '"1s"')
    assert (opts["password"].type, opts["password"].default) == ("secret", "(secret)")
    assert (opts["columns"].type, opts["columns"].default) == ("list[str]", "[]")

    sink = {o.name: o for o in infos["sink", "fake"].options}
    assert infos["sink", "fake"].summary == "A fake sink."  # docstring's first line
    assert (sink["format"].type, sink["format"].default) == ("parquet|jsonl|csv", '"parquet"')
    assert (sink["format-options"].type, sink["format-options"].default) == ("table", "{}")
    assert (sink["max-file-size"].type, sink["max-file-size"].default) == ("size", '"128MB"')
    assert (sink["rollover"].type, sink["rollover"].default) == ("duration", "unset")


@pytest.mark.usefixtures("fake_plugins")
def test_broken_plugins_are_reported_not_raised() -> None:
    infos = {i.name: i for i in list_plugins("sink")}
    assert infos["broken"].error is not None
    assert infos["broken"].error.startswith("ModuleNotFoundError")
    assert install_command("kafka") in (infos["kafkaish"].error or "")
    assert infos["fake"].error is None
    assert [i.kind for i in list_plugins("sink")] == ["sink"] * 4


def test_describe_type() -> None:
    class Inner(BaseModel):
        x: int = 1

    class M(ConnectorConfig):
        a: Duration | None = None
        b: list[Size] = Field(default_factory=list)
        c: Literal["x", "y"] = "x"
        d: dict[str, str] = Field(default_factory=dict)
        e: Inner = Field(default_factory=Inner)
        f: int | str = 1
        g: bool = True
        h: float = Field(0.25, description="  spread\n   over lines ")

    opts = {o.name: o for o in describe_options(M)}
    assert {n: o.type for n, o in opts.items()} == {
        "a": "duration", "b": "list[size]", "c": "x|y", "d": "table[str]", "e": "table",
        "f": "int | str", "g": "bool", "h": "float"}
    assert opts["e"].default == "{x = 1}"
    assert opts["g"].default == "true"
    assert opts["h"].description == "spread over lines"
    assert describe_type(Duration) == "duration"


def test_real_plugins_listed_without_crashing() -> None:
    # Whatever is installed (some connectors may still be missing): never raises.
    for info in list_plugins():
        assert info.kind in ("source", "sink", "format")
        assert info.error or isinstance(info.options, list)
