"""``[pipeline] executor`` and ``ray-address``: parsed, checked, and what runs the attempts."""
from __future__ import annotations

from typing import Any

import pytest

from hub.config import load_pipeline
from hub.errors import ConfigErrors
from hub.runner import new_executor
from runtime.executor.local import LocalExecutor
from runtime.metrics import PipelineMetrics

pytestmark = pytest.mark.usefixtures("fake_plugins")

BODY = '[source]\ntype = "fake"\ntable = "t"\n[sink]\ntype = "fake"\npath = "x"\n'


def test_the_local_executor_is_the_default(write: Any) -> None:
    spec = load_pipeline(write('[pipeline]\nname = "p"\n' + BODY), env={})
    assert (spec.executor, spec.ray_address) == ("local", None)
    assert type(new_executor(spec)(PipelineMetrics(1))) is LocalExecutor


def test_ray_with_an_address(write: Any) -> None:
    spec = load_pipeline(write('[pipeline]\nname = "p"\nexecutor = "ray"\n'
                               'ray-address = "10.0.0.1:6379"\n' + BODY), env={})
    assert (spec.executor, spec.ray_address) == ("ray", "10.0.0.1:6379")
    pytest.importorskip("ray")
    executor = new_executor(spec)(PipelineMetrics(1))
    assert type(executor).__name__ == "RayExecutor" and executor.address == "10.0.0.1:6379"


def test_an_unknown_executor_is_refused_naming_the_key(write: Any) -> None:
    with pytest.raises(ConfigErrors) as info:
        load_pipeline(write('[pipeline]\nname = "p"\nexecutor = "spark"\n' + BODY), env={})
    assert "pipeline.executor" in str(info.value)
