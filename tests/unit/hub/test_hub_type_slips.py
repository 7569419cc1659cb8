"""Type slips in pipeline files are rejected by every connector, format and section: a boolean
where a number goes (``update-ratio = true``), a number where a boolean goes.  Pydantic's lax
mode would take both (true as 1, 1 as true); the shared base model refuses them."""
from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, BeforeValidator, ValidationError

from hub.config import _SECTIONS, load_pipeline
from hub.errors import ConfigErrors
from runtime import plugins
from runtime.config import ConnectorConfig, _scalar_kinds


def _models() -> list[tuple[str, type[BaseModel]]]:
    out: list[tuple[str, type[BaseModel]]] = [(f"[{n}]", m) for n, m in _SECTIONS.items()]
    for kind in ("source", "sink", "format"):
        for name in sorted(plugins.available(kind)):
            config = getattr(plugins.load(kind, name), "config_class", None)
            if isinstance(config, type) and issubclass(config, BaseModel):
                out.append((f"{kind} {name}", config))
    return out


def _fields(wanted: str) -> list[tuple[str, type[BaseModel], str, Any]]:
    """(what, model, key, field info) of every field admitting numbers but not booleans
    (``wanted="number"``) or booleans but not numbers (``"bool"``)."""
    out = []
    for what, model in _models():
        for name, field in model.model_fields.items():
            if any(isinstance(m, BeforeValidator) for m in field.metadata):
                continue  # durations and sizes: tested with their parsers
            kinds = _scalar_kinds(field.annotation)
            if wanted == "number" and kinds & {int, float} and bool not in kinds:
                out.append((what, model, field.alias or name, field))
            if wanted == "bool" and kinds == {bool}:
                out.append((what, model, field.alias or name, field))
    return out


NUMBERS = _fields("number")
BOOLS = _fields("bool")


def test_the_check_covers_the_options_it_should() -> None:
    keys = {(what, key) for what, _, key, _ in NUMBERS}
    assert ("source datagen", "update-ratio") in keys and ("[checkpoint]", "retain") in keys
    assert len(keys) >= 25  # every connector's numbers, not a handful
    assert all(issubclass(m, ConnectorConfig) for _, m in _models())


def _errors_at(model: type[BaseModel], key: str, value: Any) -> list[str]:
    try:
        model.model_validate({key: value})
    except ValidationError as exc:
        return [e["msg"] for e in exc.errors() if e["loc"][:1] == (key,)]
    return []


@pytest.mark.parametrize("what,model,key,field", NUMBERS,
                         ids=[f"{w}.{k}" for w, _, k, _ in NUMBERS])
def test_a_boolean_is_no_number(what: str, model: type[BaseModel], key: str, field: Any) -> None:
    assert any("got true (a boolean)" in m for m in _errors_at(model, key, True)), (what, key)
    number = field.default if isinstance(field.default, (int, float)) else 1
    assert not any("boolean" in m for m in _errors_at(model, key, number)), (what, key)


@pytest.mark.parametrize("what,model,key,field", BOOLS, ids=[f"{w}.{k}" for w, _, k, _ in BOOLS])
def test_a_number_is_no_boolean(what: str, model: type[BaseModel], key: str, field: Any) -> None:
    assert any("got 1 (a number)" in m for m in _errors_at(model, key, 1)), (what, key)
    assert not _errors_at(model, key, True), (what, key)


def test_validate_reports_the_slip_with_its_line(write: Any) -> None:
    path = write('[pipeline]\nname = "d"\n[source]\ntype = "datagen"\nupdate-ratio = true\n'
                 '[sink]\ntype = "blackhole"\n[checkpoint]\nretain = false\n')
    with pytest.raises(ConfigErrors) as info:
        load_pipeline(path, env={})
    assert info.value.lines() == [
        f"{path}:5: source.update-ratio: expected a number, got true (a boolean)",
        f"{path}:9: checkpoint.retain: expected a number, got false (a boolean)"]


def test_numbers_from_environment_references_stay_accepted(write: Any) -> None:
    path = write('[pipeline]\nname = "d"\n[source]\ntype = "datagen"\n'
                 'update-ratio = "${RATIO}"\n[sink]\ntype = "blackhole"\n')
    spec = load_pipeline(path, env={"RATIO": "0.25"})
    assert spec.source_config.update_ratio == 0.25  # type: ignore[attr-defined]


def test_slips_inside_tables_and_lists_are_rejected() -> None:
    from pydantic import Field

    class M(ConnectorConfig):
        offsets: dict[str, int] = Field({})
        ids: list[int] = Field([])
        flags: list[bool] = Field([])

    assert _errors_at(M, "offsets", {"t:0": True}) == [
        "Value error, t:0: expected a number, got true (a boolean)"]
    assert _errors_at(M, "ids", [1, False]) == [
        "Value error, item 2: expected a number, got false (a boolean)"]
    assert _errors_at(M, "flags", [True, 0]) == [
        "Value error, item 2: expected true or false, got 0 (a number)"]
    assert not _errors_at(M, "offsets", {"t:0": 5}) and not _errors_at(M, "ids", [1, "2"])
    from sources.kafka.config import KafkaSourceConfig

    assert _errors_at(KafkaSourceConfig, "startup-specific-offsets", {"t:0": True})
