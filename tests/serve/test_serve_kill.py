"""kill -9 of the service while its pipelines run: on restart each resumes from its latest
checkpoint, and the lakes end equal to a run that never failed (exactly once, as for a killed
``hub run``)."""
from __future__ import annotations

import random
import time

import pytest

from tests.e2e.lake import hidden_files, lake_rows
from tests.killing import datagen_pipeline, kill_seed, latest_checkpoint, run_to_end
from tests.serve.helpers import Service, request, wait_for

pytestmark = [pytest.mark.serve, pytest.mark.e2e]

ROWS, RPS = 30_000, 15_000
SINK = """\
[sink]
type = "files"
path = "{lake}"
format = "parquet"
"""


def _pipeline(d, name: str, rps: int) -> str:
    path = datagen_pipeline(d / f"{name}.toml", SINK.format(lake=d / f"lake-{name}"), name=name,
                            state=str(d / f"state-{name}"), rows=ROWS, rps=rps)
    with open(path) as f:
        return f.read()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    d = tmp_path_factory.mktemp("reference")
    _pipeline(d, "ref", 0)
    run_to_end(str(d / "ref.toml"))
    rows = lake_rows(str(d / "lake-ref"))
    assert sum(rows.values()) == 2 * ROWS
    return rows


def _states(svc: Service) -> dict[str, str]:
    status, body = request("GET", f"{svc.url}/pipelines?expand=status")
    assert status == 200, body
    return {name: s["state"] for name, s in body.items()}


def test_kill_9_of_the_service_resumes_every_pipeline_exactly_once(tmp_path, reference):
    names = ["kill-a", "kill-b"]
    texts = {n: _pipeline(tmp_path, n, RPS) for n in names}
    states = {n: str(tmp_path / f"state-{n}") for n in names}
    service_state, log = str(tmp_path / "service"), str(tmp_path / "service.log")
    seed = kill_seed()
    rnd = random.Random(seed)
    kills = 0
    for round_ in range(3):
        before = {n: latest_checkpoint(states[n]) for n in names}
        svc = Service(service_state, log)
        try:
            if round_ == 0:
                for n in names:
                    status, body = request("POST", f"{svc.url}/pipelines", texts[n])
                    assert status == 201, body
            # every pipeline makes progress in every round, however loaded the machine
            wait_for(lambda: all(latest_checkpoint(states[n]) > before[n] for n in names)
                     or all(s == "FINISHED" for s in _states(svc).values()), 60,
                     "a new checkpoint of every pipeline")
            time.sleep(rnd.uniform(0.0, 0.6))
            kills += "RUNNING" in _states(svc).values()
        finally:
            svc.kill()  # also when the round failed: no service left running
    assert kills >= 2, f"only {kills} kill(s) hit running pipelines (HUB_TEST_SEED={seed})"

    svc = Service(service_state, log)
    try:
        wait_for(lambda: _states(svc) == {n: "FINISHED" for n in names}, 120,
                 "both pipelines to finish")
    finally:
        svc.stop()
    text = svc.text()
    for n in names:
        assert f"{n}: resuming from checkpoint" in text, text
        assert lake_rows(str(tmp_path / f"lake-{n}")) == reference, n
        assert hidden_files(str(tmp_path / f"lake-{n}")) == []
    assert "internal error" not in text
