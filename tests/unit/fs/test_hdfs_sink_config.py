"""Options of ``type = "hdfs"``: the files sink's, with an hdfs:// path."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from runtime import plugins
from sinks.files.config import FilesSinkConfig
from sinks.hdfs.config import HdfsSinkConfig
from sinks.hdfs.sink import HdfsSink


def test_hdfs_path_and_the_files_options():
    c = HdfsSinkConfig.model_validate({"path": "hdfs://nn:9870/lake/", "format": "jsonl",
                                       "rolling-file-size": "64MB",
                                       "partition-format": "dt=%Y-%m-%d"})
    assert c.root == "hdfs://nn:9870/lake"
    assert c.rolling_file_size == 64 << 20 and c.file_format.extension == "jsonl"


@pytest.mark.parametrize("path", ["/tmp/lake", "s3://b/lake", "file:///tmp/x"])
def test_a_non_hdfs_path_is_refused(path):
    with pytest.raises(ValidationError, match="path"):
        HdfsSinkConfig.model_validate({"path": path})


def test_the_files_sink_takes_hdfs_urls_too():
    assert FilesSinkConfig.model_validate({"path": "hdfs://nn:9870/l"}).root == "hdfs://nn:9870/l"
    with pytest.raises(ValidationError, match="unsupported URL scheme"):
        FilesSinkConfig.model_validate({"path": "s3://b/l"})


def test_registered_as_hdfs():
    assert plugins.load("sink", "hdfs") is HdfsSink
