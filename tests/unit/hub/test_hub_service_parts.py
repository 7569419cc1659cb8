"""Pure parts of the service: masking secrets, --listen addresses and the token rule, the
runtime's per-op counters and checkpoint history."""
from __future__ import annotations

import pytest

from runtime.errors import ConfigError
from runtime.metrics import CheckpointInfo, PipelineMetrics, count_ops

pytest.importorskip("fastapi")
from hub.service.masking import MASK, mask  # noqa: E402
from hub.service.server import is_loopback, parse_listen, token_for  # noqa: E402


def test_mask_hides_secrets_by_key_and_in_urls():
    doc = {"password": "p", "sasl.password": "q", "api-key": "k", "token": "t",
           "properties": {"ssl.key.password": "r", "bootstrap.servers": "h:9092"},
           "url": "postgresql://u:pw@db:5432/x", "plain": "postgresql://db:5432/x",
           "key-columns": ["id"], "format": "json", "empty-password": "", "port": 3306}
    out = mask(doc)
    assert out == {"password": MASK, "sasl.password": MASK, "api-key": MASK, "token": MASK,
                   "properties": {"ssl.key.password": MASK, "bootstrap.servers": "h:9092"},
                   "url": f"postgresql://u:{MASK}@db:5432/x", "plain": "postgresql://db:5432/x",
                   "key-columns": ["id"], "format": "json", "empty-password": "", "port": 3306}
    assert doc["password"] == "p", "a new object: the spec is not changed"


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:8083", ("127.0.0.1", 8083)), (":9000", ("127.0.0.1", 9000)),
    ("9000", ("127.0.0.1", 9000)), ("0.0.0.0:0", ("0.0.0.0", 0)),
    ("[::1]:8083", ("::1", 8083)), ("localhost", ("localhost", 8083))])
def test_parse_listen(text, expected):
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["h:x", "h:70000", "[::1]x"])
def test_parse_listen_rejects(text):
    with pytest.raises(ConfigError, match="expected HOST:PORT"):
        parse_listen(text)


def test_token_required_beyond_loopback(monkeypatch):
    monkeypatch.delenv("HUB_TOKEN", raising=False)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")
    assert token_for("127.0.0.1") is None
    with pytest.raises(ConfigError, match="set HUB_TOKEN"):
        token_for("0.0.0.0")
    monkeypatch.setenv("HUB_TOKEN", "abc")
    assert token_for("0.0.0.0") == "abc" and token_for("127.0.0.1") == "abc"


def test_count_ops():
    assert count_ops("") == []
    assert count_ops("rrrr") == [("r", 4)]
    assert count_ops("cudcc") == [("c", 3), ("u", 1), ("d", 1)]


def test_record_in_and_checkpoint_history():
    m = PipelineMetrics(2)
    m.record_in(0, "db.t", "ccu", 1_000)
    m.record_in(1, "db.t", "d", 3_000)
    m.record_in(1, "db.u", "r", None)
    assert m.totals() == {"db.t": (4, 0), "db.u": (1, 0)}
    assert m.ops_totals() == {("db.t", "c"): 2, ("db.t", "d"): 1, ("db.t", "u"): 1,
                              ("db.u", "r"): 1}
    m.record_out(1, "db.t", "cd")
    assert m.totals()["db.t"] == (4, 2)
    assert m.ops_totals("out") == {("db.t", "c"): 1, ("db.t", "d"): 1}
    assert m.event_time_lag_s(now=10.0) == 7.0, "from the newest event time of any subtask"
    m.record_caught_up(0, 9.5)  # a heartbeat: nothing newer left in the source
    assert m.event_time_lag_s(now=10.0) == 0.5, "a quiet source is not behind"
    assert m.idle_s() is not None and m.idle_s() < 5
    assert m.last_checkpoint is None
    for i in range(1, 60):
        m.last_checkpoint = CheckpointInfo(i, float(i), 0.1)
    assert m.last_checkpoint.checkpoint_id == 59
    assert [c.checkpoint_id for c in m.checkpoint_history][:1] == [10], "the newest 50 kept"


def test_grafana_dashboard_uses_only_metrics_the_service_exposes(tmp_path):
    import json
    import os
    import re

    from prometheus_client import generate_latest

    from hub.config import load_pipeline
    from hub.service.collector import registry_for
    from hub.service.handle import PipelineHandle

    path = tmp_path / "p.toml"
    path.write_text(f'[pipeline]\nname = "p"\n[checkpoint]\ndir = "{tmp_path}/s"\n'
                    '[source]\ntype = "datagen"\ntables = ["orders"]\n[sink]\ntype = "blackhole"\n')
    h = PipelineHandle(load_pipeline(str(path)))
    h.metrics.record_in(0, "datagen.orders", "rc", 1_000)
    h.metrics.record_out(0, "datagen.orders", "rc")
    os.makedirs(tmp_path / "s" / "checkpoints" / "chk-000001")
    (tmp_path / "s" / "checkpoints" / "chk-000001" / "_metadata").write_text("{}")
    h.metrics.last_checkpoint = CheckpointInfo(1, 1.0, 0.1)
    h.metrics.watermark_ms = 1_000
    for gauge in ("binlog_lag_s", "snapshot_chunks_done", "snapshot_chunks_started"):
        h.metrics.set_gauge("reader-0", gauge, 1.0)
    exposed = set(re.findall(r"^(hub_\w+)", generate_latest(registry_for(lambda: [h])).decode(),
                             re.MULTILINE))
    root = os.path.join(os.path.dirname(__file__), "..", "..", "..")
    with open(os.path.join(root, "examples", "grafana-dashboard.json")) as f:
        exprs = [t["expr"] for p in json.load(f)["panels"] for t in p["targets"]]
    used = {name for e in exprs for name in re.findall(r"\bhub_\w+", e)}
    assert len(used) > 10 and used - exposed == set()


def test_state_is_restarting_between_attempts_locally_and_while_a_ray_job_master_restarts(
        tmp_path):
    from types import SimpleNamespace

    from hub.config import load_pipeline
    from hub.service.handle import PipelineHandle

    path = tmp_path / "p.toml"
    path.write_text(f'[pipeline]\nname = "p"\n[checkpoint]\ndir = "{tmp_path}/s"\n'
                    '[source]\ntype = "datagen"\ntables = ["orders"]\n[sink]\ntype = "blackhole"\n')
    h = PipelineHandle(load_pipeline(str(path)))
    h.state = "RUNNING"
    attempt = SimpleNamespace(restarting=False)  # the Ray driver's executor: pulled flag
    h.control = SimpleNamespace(executor=SimpleNamespace(current=attempt))
    assert h.current_state() == "RUNNING"
    h.on_restart("reader 0 lost: restarting from the latest checkpoint")
    assert h.current_state() == "RUNNING"  # the next attempt runs
    attempt.restarting = True  # the job master waits between two attempts
    assert h.current_state() == "RESTARTING"
    h.control.executor.current = None  # locally: between two attempts
    assert h.current_state() == "RESTARTING"
    h.state = "STOPPED"
    assert h.current_state() == "STOPPED"
