"""The Kafka sink's transaction timeout against [checkpoint], checked when the pipeline file is
validated: `hub validate` and `hub run` fail in one line before connecting anywhere."""
from __future__ import annotations

import pytest

from hub.cli import main

PIPELINE = """\
[pipeline]
name = "ckpt"
[checkpoint]
interval = "{interval}"
dir = "{d}/state"
[source]
type = "datagen"
rows = 10
[sink]
type = "kafka"
bootstrap-servers = "127.0.0.1:1"
topic = "t"
delivery = "{delivery}"
transaction-timeout = "{timeout}"
"""


def write(tmp_path, interval="10s", timeout="15min", delivery="exactly-once") -> str:
    p = tmp_path / "p.toml"
    p.write_text(PIPELINE.format(d=tmp_path, interval=interval, timeout=timeout,
                                 delivery=delivery))
    return str(p)


@pytest.mark.parametrize("command", [["validate"], ["run", "--no-progress"]])
def test_timeout_shorter_than_interval_plus_checkpoint_timeout_fails_at_start(
        tmp_path, capsys, command):
    # default checkpoint.timeout is 600s: 5min + 600s > 10min
    path = write(tmp_path, interval="5min", timeout="10min")
    assert main([command[0], path, *command[1:]]) == 2
    out, err = capsys.readouterr()
    [line] = err.splitlines()  # one line, and nothing connected (the broker does not exist)
    assert line.startswith(f"{path}:14: sink.transaction-timeout: 600s is too short for "
                           "checkpoint.interval (300s) plus checkpoint.timeout (600s)")
    assert "longer than 900s" in line
    assert not (tmp_path / "state").exists()


def test_long_enough_timeout_and_other_deliveries_pass(tmp_path, capsys):
    assert main(["validate", write(tmp_path)]) == 0
    # without transactions there is no timeout to respect
    assert main(["validate", write(tmp_path, interval="5min", timeout="10min",
                                   delivery="at-least-once")]) == 0
    assert capsys.readouterr().err == ""
