"""``hub run --http``: one foreground pipeline's status, metrics and page over HTTP."""
from __future__ import annotations

import re
import signal
import subprocess
import sys

import pytest

from tests.serve.helpers import datagen_toml, request, wait_for

pytestmark = [pytest.mark.serve, pytest.mark.e2e]


def test_run_http_serves_status_and_metrics(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(datagen_toml("fg", rps=3000).replace(
        "[source]", f'dir = "{tmp_path / "state"}"\n[source]'))
    log = tmp_path / "run.log"
    with open(log, "w") as out:
        p = subprocess.Popen([sys.executable, "-m", "hub", "run", str(path), "--no-progress",
                              "--http", "127.0.0.1:0"], stdout=out, stderr=out, text=True)
    try:
        url = wait_for(lambda: (m := re.search(r"serving status and metrics on (\S+)",
                                               log.read_text())) and m.group(1), 60, "--http")
        s = wait_for(lambda: (r := request("GET", f"{url}/status"))[0] == 200
                     and r[1]["checkpoints"]["last"] and r[1], 30, "a checkpoint")
        assert s["name"] == "fg" and s["state"] == "RUNNING" and s["rows_in"] > 0
        wait_for(lambda: 'hub_records_out_total{op="c",pipeline="fg",table="datagen.orders"}'
                 in request("GET", f"{url}/metrics")[1], 30, "rows out by op")
        status, page = request("GET", f"{url}/")
        assert status == 200 and "<tbody id='subtasks'>" in page and "<button" not in page
        assert request("POST", f"{url}/status", "x")[0] == 405, "read-only"
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(60)
    assert p.returncode == 0, log.read_text()
