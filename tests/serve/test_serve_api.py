"""The service's REST API in-process (TestClient over the real supervisor, real datagen ->
blackhole pipelines in threads): create, status, metrics, pause, resume, stop with a savepoint,
restart, delete, checkpoints, validation, errors, the token, and no secret in any answer."""
from __future__ import annotations

import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.serve.helpers import datagen_toml, wait_for

pytestmark = pytest.mark.serve


def _status(client, name):
    r = client.get(f"/pipelines/{name}/status")
    assert r.status_code == 200, r.text
    return r.json()


def _checkpointed(client, name, after=0):
    def done():
        s = _status(client, name)
        last = s["checkpoints"]["last"]
        return s if last and last["id"] > after else None
    return wait_for(done, 30, f"a checkpoint of {name} after {after}")


def _metrics(client) -> dict[tuple[str, tuple], float]:
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(r.text) for s in fam.samples}


def test_create_status_metrics_and_lifecycle(client, supervisor):
    r = client.post("/pipelines", content=datagen_toml("orders-bh"),
                    headers={"content-type": "application/toml"})
    assert r.status_code == 201, r.text
    assert r.json() == {"name": "orders-bh", "state": "RUNNING", "source": "datagen",
                        "sink": "blackhole", "parallelism": 2}
    assert client.get("/pipelines").json() == ["orders-bh"]
    s = _checkpointed(client, "orders-bh")
    assert s["state"] == "RUNNING" and s["rows_in"] > 0
    assert {t["table"] for t in s["tables"]} == {"datagen.orders", "datagen.customers"}
    assert [t["source"] for t in s["subtasks"]] == ["RUNNING", "RUNNING"]
    assert s["lag"]["event_time_lag_s"] is not None and s["lag"]["idle_s"] is not None
    assert s["source_position"]["readers"], "the latest checkpoint's split states"

    m = _metrics(client)
    p = ("pipeline", "orders-bh")
    assert m[("hub_pipeline_state", (p, ("state", "RUNNING")))] == 1
    assert m[("hub_records_in_total", (("op", "c"), p, ("table", "datagen.orders")))] > 0
    assert m[("hub_checkpoints_completed_total", (p,))] >= 1
    assert ("hub_event_time_lag_seconds", (p,)) in m
    assert ("hub_last_checkpoint_size_bytes", (p,)) in m
    assert ("hub_queue_fill_ratio", (p, ("subtask", "1"))) in m

    # pause: a final checkpoint, then nothing moves; resume goes on from it
    assert client.put("/pipelines/orders-bh/pause").status_code == 202
    wait_for(lambda: _status(client, "orders-bh")["state"] == "PAUSED", 30, "PAUSED")
    paused = _status(client, "orders-bh")
    last = paused["checkpoints"]["last"]["id"]
    assert client.put("/pipelines/orders-bh/resume").status_code == 202
    s = _checkpointed(client, "orders-bh", after=last)
    assert s["state"] == "RUNNING" and s["checkpoints"]["restored_from"] == last

    # a savepoint on request, then stop with another one; resume starts from that one
    r = client.post("/pipelines/orders-bh/savepoints", json={"name": "sp-a"})
    assert r.status_code == 200 and r.json()["path"].endswith("/savepoints/sp-a"), r.text
    r = client.put("/pipelines/orders-bh/stop", params={"savepoint": "sp-b"})
    assert r.status_code == 200 and r.json()["state"] == "STOPPED", r.text
    h = client.get("/pipelines/orders-bh/checkpoints").json()
    assert h["savepoints"] == ["sp-a", "sp-b"]
    assert h["history"][0]["savepoint"] == "sp-b", "the stop's savepoint is the last one"
    assert "sp-a" in [e["savepoint"] for e in h["history"]]
    assert client.put("/pipelines/orders-bh/resume").status_code == 202
    s = _checkpointed(client, "orders-bh", after=h["history"][0]["id"])
    assert s["checkpoints"]["restored_from"] > h["history"][0]["id"], "from sp-b's copy"

    # a stopped pipeline has no savepoint to take: refused, never the last one's path reused
    r = client.put("/pipelines/orders-bh/stop", params={"savepoint": "sp-c"})
    assert r.status_code == 200
    r = client.put("/pipelines/orders-bh/stop", params={"savepoint": "sp-d"})
    assert r.status_code == 409 and "is not running (STOPPED)" in r.json()["message"]
    r = client.post("/pipelines/orders-bh/restart")
    assert r.status_code == 200 and r.json()["state"] == "RUNNING", r.text
    assert client.delete("/pipelines/orders-bh").status_code == 204
    assert client.get("/pipelines").json() == []
    assert client.get("/pipelines/orders-bh/status").status_code == 404


def test_bounded_pipeline_finishes(client):
    assert client.post("/pipelines", content=datagen_toml("bounded", rps=0, rows=3000)
                       ).status_code == 201
    s = wait_for(lambda: (st := _status(client, "bounded"))["state"] == "FINISHED" and st,
                 60, "FINISHED")
    assert s["rows_out"] == 6000
    assert sum(t["ops"].get("c", 0) + t["ops"].get("u", 0) + t["ops"].get("d", 0)
               for t in s["tables"]) == 6000


def test_bad_requests_get_one_clear_4xx(client):
    r = client.post("/pipelines", content="[pipeline]\nname = 'x'\n[source]\ntype = 'nope'\n")
    assert r.status_code == 400
    body = r.json()
    assert body["message"].startswith("body:4: source.type: unknown source type 'nope'")
    assert "(and 1 more problems)" in body["message"]
    assert any("missing [sink] section" in e for e in body["errors"])

    r = client.post("/validate", content="[pipeline\n")
    assert r.status_code == 200 and r.json()["valid"] is False
    assert r.json()["errors"][0].startswith("body:1: invalid TOML")
    r = client.post("/validate", content=datagen_toml("ok"))
    assert r.json() == {"valid": True, "name": "ok", "source": "datagen", "sink": "blackhole",
                        "errors": []}
    assert client.get("/pipelines").json() == [], "validate creates nothing"

    for method, url, kw, code in [
            ("post", "/pipelines", {"content": b""}, 400),
            ("post", "/pipelines", {"content": b"\xff\xfe"}, 400),
            ("get", "/pipelines/nope/status", {}, 404),
            ("put", "/pipelines/nope/pause", {}, 404),
            ("post", "/pipelines/nope/savepoints", {"json": {"name": "../x"}}, 422),
            ("post", "/pipelines/nope/savepoints", {"json": {"stop": "maybe"}}, 422),
            ("put", "/pipelines/nope/stop", {"params": {"savepoint": "a/b"}}, 422),
            ("get", "/pipelines", {"params": {"expand": "x"}}, 422),
            ("get", "/nowhere", {}, 404)]:
        r = getattr(client, method)(url, **kw)
        assert r.status_code == code, (url, r.text)
        body = r.json()
        assert set(body) == {"error_code", "message", "errors"} and body["error_code"] == code
        assert "\n" not in body["message"] and "Traceback" not in r.text

    assert client.post("/pipelines", content=datagen_toml("twice")).status_code == 201
    r = client.post("/pipelines", content=datagen_toml("twice"))
    assert r.status_code == 409 and r.json()["message"] == "pipeline 'twice' already exists"


def test_mutations_need_the_token(token_client):
    c = token_client
    r = c.post("/pipelines", content=datagen_toml("guarded"))
    assert r.status_code == 401 and "HUB_TOKEN" in r.json()["message"]
    r = c.post("/pipelines", content=datagen_toml("guarded"),
               headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401
    auth = {"Authorization": "Bearer t0ken-xyz"}
    assert c.post("/pipelines", content=datagen_toml("guarded"), headers=auth).status_code == 201
    assert c.get("/pipelines/guarded/status").status_code == 200, "reading needs no token"
    assert c.put("/pipelines/guarded/pause").status_code == 401
    assert c.delete("/pipelines/guarded").status_code == 401
    assert c.delete("/pipelines/guarded", headers=auth).status_code == 204


SECRET = "s3cret-Pw-77"

MYSQL_WITH_SECRET = f"""\
[pipeline]
name = "secretive"
[restart]
attempts = 0
[source]
type = "mysql"
hostname = "127.0.0.1"
port = 1
username = "u"
password = "{SECRET}"
tables = ["db.t"]
[sink]
type = "files"
path = "{{lake}}"
"""


def test_no_secret_in_any_answer_or_log(client, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    text = MYSQL_WITH_SECRET.format(lake=tmp_path / "lake")
    assert client.post("/validate", content=text).json()["valid"] is True
    r = client.post("/pipelines", content=text)
    assert r.status_code == 201, r.text
    s = wait_for(lambda: (st := _status(client, "secretive"))["state"] == "FAILED" and st,
                 60, "the unreachable source to fail the pipeline")
    assert s["last_error"]
    config = client.get("/pipelines/secretive/config").json()
    assert config["source"]["password"] == "**********"
    answers = [client.get(u).text for u in (
        "/pipelines/secretive", "/pipelines/secretive/config", "/pipelines/secretive/status",
        "/pipelines?expand=status", "/metrics", "/", "/ui/pipelines/secretive",
        "/pipelines/secretive/checkpoints")]
    answers.append(client.post("/pipelines", content=text).text)  # the 409
    for answer in answers:
        assert SECRET not in answer
    assert SECRET not in caplog.text


def test_one_service_per_state_folder(supervisor):
    from hub.service.supervisor import Supervisor
    from runtime.errors import HubError

    with pytest.raises(HubError, match="another hub serve runs on"):
        Supervisor(supervisor.root).open()


def test_pipelines_start_again_with_the_service(tmp_path):
    """A service closed (SIGTERM) and opened again: running pipelines resume from their final
    checkpoint, paused ones stay paused, finished ones are not run again."""
    from hub.service.supervisor import Supervisor

    sup = Supervisor(str(tmp_path / "state"))
    sup.open()
    try:
        sup.create(datagen_toml("keeps-running"))
        sup.create(datagen_toml("paused"))
        sup.create(datagen_toml("bounded", rps=0, rows=100))
        wait_for(lambda: all(sup.get(n).metrics.last_checkpoint for n in
                             ("keeps-running", "paused")), 30, "checkpoints")
        sup.pause("paused")
        wait_for(lambda: sup.get("bounded").state == "FINISHED", 30, "FINISHED")
        wait_for(lambda: sup.get("paused").state == "PAUSED", 30, "PAUSED")
    finally:
        sup.close(wait_s=30)
    final = sup.get("keeps-running").metrics.last_checkpoint.checkpoint_id

    again = Supervisor(str(tmp_path / "state"))
    again.open()
    try:
        assert {n: p.state for n, p in again.pipelines.items()} == {
            "keeps-running": "RUNNING", "paused": "PAUSED", "bounded": "FINISHED"}
        p = again.get("keeps-running")
        wait_for(lambda: p.metrics.restored_from is not None, 30, "the restore")
        assert p.metrics.restored_from == final
        assert not again.get("paused").running and not again.get("bounded").running
    finally:
        again.close(wait_s=30)


def test_a_stored_pipeline_that_no_longer_loads_is_shown_and_deletable(tmp_path, monkeypatch):
    """Its ${ENV} gone when the service starts again: listed, its status a 409 with the
    problem, on the page, deletable; the others run."""
    from fastapi.testclient import TestClient

    from hub.service.api import create_app
    from hub.service.supervisor import Supervisor

    monkeypatch.setenv("HUB_TEST_TABLE", "orders")
    sup = Supervisor(str(tmp_path / "state"))
    sup.open()
    try:
        sup.create(datagen_toml("env-based").replace('tables = ["orders", "customers"]',
                                                     'tables = ["${HUB_TEST_TABLE}"]'))
        sup.create(datagen_toml("plain"))
    finally:
        sup.close(wait_s=30)
    monkeypatch.delenv("HUB_TEST_TABLE")
    again = Supervisor(str(tmp_path / "state"))
    again.open()
    try:
        with TestClient(create_app(again), raise_server_exceptions=False) as c:
            assert c.get("/pipelines").json() == ["env-based", "plain"]
            r = c.get("/pipelines/env-based/status")
            assert r.status_code == 409, r.text
            assert "does not load any more" in r.json()["message"]
            assert "HUB_TEST_TABLE" in r.json()["message"]
            assert "id='broken-env-based'" in c.get("/").text
            assert c.get("/pipelines/plain/status").json()["state"] == "RUNNING"
            assert c.delete("/pipelines/env-based").status_code == 204
            assert c.get("/pipelines").json() == ["plain"]
    finally:
        again.close(wait_s=30)


def test_restarts_after_transient_errors_are_counted_and_said(client, tmp_path):
    """A source that can't connect (transient): restarted as [restart] says, each restart
    counted (status, metrics) with its reason, then FAILED with the last error."""
    text = MYSQL_WITH_SECRET.format(lake=tmp_path / "lake").replace(
        "attempts = 0", 'attempts = 2\ndelay = "50ms"')
    assert client.post("/pipelines", content=text).status_code == 201
    s = wait_for(lambda: (st := _status(client, "secretive"))["state"] == "FAILED" and st,
                 60, "FAILED after the restarts")
    assert s["restarts"] == 2
    assert len(s["errors"]) == 3 and "restarting from the latest checkpoint" in \
        s["errors"][0]["message"]
    assert "gave up after 2 restarts" in s["last_error"]
    m = _metrics(client)
    assert m[("hub_restarts_total", (("pipeline", "secretive"),))] == 2
    assert m[("hub_errors_total", (("pipeline", "secretive"),))] == 3
    assert m[("hub_pipeline_state", (("pipeline", "secretive"), ("state", "FAILED")))] == 1


def test_two_pipelines_can_not_share_a_checkpoint_folder(client, tmp_path):
    shared = f'[checkpoint]\ndir = "{tmp_path / "shared"}"'
    first = datagen_toml("first").replace('[checkpoint]', shared)
    assert client.post("/pipelines", content=first).status_code == 201
    r = client.post("/pipelines", content=first.replace('name = "first"', 'name = "second"'))
    assert r.status_code == 409
    assert r.json()["message"].startswith("pipeline 'first' already keeps its checkpoints in")


def test_update_a_pipelines_file(client):
    """PUT .../config: validated first (the pipeline runs on unharmed when the new file is
    bad); a good one restarts the pipeline from its final checkpoint under the new file."""
    assert client.post("/pipelines", content=datagen_toml("upd")).status_code == 201
    before = _checkpointed(client, "upd")["checkpoints"]["last"]["id"]
    r = client.put("/pipelines/upd/config", content="[pipeline]\nname = 'upd'\n")
    assert r.status_code == 400 and "missing [source] section" in r.text
    r = client.put("/pipelines/upd/config", content=datagen_toml("other"))
    assert r.status_code == 400 and "a pipeline keeps its name" in r.json()["message"]
    assert _status(client, "upd")["state"] == "RUNNING"
    r = client.put("/pipelines/upd/config", content=datagen_toml("upd", parallelism=1))
    assert r.status_code == 200 and r.json()["parallelism"] == 1, r.text
    s = _checkpointed(client, "upd", after=before)
    assert s["parallelism"] == 1 and len(s["subtasks"]) == 1
    assert s["checkpoints"]["restored_from"] > before, "resumed from the final checkpoint"
    assert client.get("/pipelines/upd/config").json()["pipeline"]["parallelism"] == 1
