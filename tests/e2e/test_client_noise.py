"""A new user's first run against a Kafka broker that is not up: a handful of lines, each
through the hub's logging, not librdkafka's ~20 lines a second straight to stderr."""
from __future__ import annotations

import signal
import socket
import time
from pathlib import Path

import pytest

from tests.killing import hub, reaped

pytestmark = pytest.mark.e2e

PIPELINES = {
    "source": '[source]\ntype = "kafka"\nbootstrap-servers = "{servers}"\ntopics = ["t"]\n'
              '[sink]\ntype = "blackhole"\n',
    "sink": '[source]\ntype = "datagen"\nrows-per-second = 100\n'
            '[sink]\ntype = "kafka"\nbootstrap-servers = "{servers}"\ntopic = "t"\n',
}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("side", sorted(PIPELINES))
def test_a_broker_down_is_a_handful_of_lines(side: str, tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(f'[pipeline]\nname = "noise"\n[checkpoint]\ndir = "{tmp_path}/state"\n'
                    '[restart]\ndelay = "1s"\n'
                    + PIPELINES[side].format(servers=f"127.0.0.1:{_closed_port()}"))
    with reaped(hub("run", str(path), "--no-progress", cwd=str(tmp_path))) as p:
        time.sleep(4)
        p.send_signal(signal.SIGINT)
        err = p.communicate(timeout=60)[1]
    lines = err.splitlines()
    show = f"{len(lines)} lines: " + "\n".join(lines[:8])
    assert not [line for line in lines if line.startswith("%")], show  # librdkafka's format
    assert len(lines) <= 12, show
