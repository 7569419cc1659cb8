"""Every example pipeline stays valid."""
import glob
import os

import pytest

from hub.config import load_pipeline

EXAMPLES = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "..", "..",
                                         "examples", "*.toml")))


@pytest.mark.parametrize("path", EXAMPLES, ids=os.path.basename)
def test_example_is_valid(path):
    spec = load_pipeline(path, env={"MYSQL_PASSWORD": "secret"})
    assert spec.name
