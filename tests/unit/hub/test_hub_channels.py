"""``[pipeline] channel-capacity`` and ``channel-bytes`` reach the job's channels."""
from __future__ import annotations

import pytest

from hub.config import load_pipeline
from hub.errors import ConfigErrors
from hub.runner import build_job
from runtime.channel import DEFAULT_CHANNEL_BYTES
from runtime.checkpoint.storage import CheckpointStorage
from runtime.deadletter import DeadLetterQueue

pytestmark = pytest.mark.usefixtures("fake_plugins")

PIPELINE = """\
[pipeline]
name = "demo"
{extra}

[source]
type = "fake"
table = "db.t"

[sink]
type = "fake"
path = "./lake"
"""


def job_for(tmp_path, extra: str):
    path = tmp_path / "p.toml"
    path.write_text(PIPELINE.format(extra=extra))
    spec = load_pipeline(str(path), env={})
    return build_job(spec, None, CheckpointStorage(str(tmp_path / "state")),
                     connectors=(object(), object()), dead_letter=DeadLetterQueue())


def test_channel_options_reach_the_job(tmp_path):
    job = job_for(tmp_path, 'channel-capacity = 3\nchannel-bytes = "2MB"')
    assert job.channel_capacity == 3 and job.channel_bytes == 2 * 1024 * 1024


def test_channels_are_bounded_by_bytes_by_default(tmp_path):
    job = job_for(tmp_path, "")
    assert job.channel_capacity == 8 and job.channel_bytes == DEFAULT_CHANNEL_BYTES


def test_a_bad_channel_size_is_a_config_error(tmp_path):
    with pytest.raises(ConfigErrors, match="pipeline.channel-bytes"):
        job_for(tmp_path, 'channel-bytes = "lots"')
