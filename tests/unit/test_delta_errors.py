"""The one translation of deltalake's errors (sinks/delta/table.py): one line, no terminal
colours, transient where a retry may help, terminal otherwise."""
from __future__ import annotations

import pyarrow as pa
import pytest

pytest.importorskip("deltalake")

from deltalake import DeltaTable, write_deltalake  # noqa: E402

from runtime.errors import TerminalError, TransientError  # noqa: E402
from sinks.delta.table import delta_errors  # noqa: E402


def test_an_unreachable_store_is_transient_in_one_line():
    with pytest.raises(TransientError) as err:
        with delta_errors("appending to table shop.t"):
            write_deltalake("hdfs://127.0.0.1:1/lake/t", pa.table({"a": [1]}))
    line = str(err.value)
    assert line.startswith("delta: appending to table shop.t: ")
    assert "Connection refused" in line and "\n" not in line and "\x1b" not in line


def test_a_missing_table_and_data_that_does_not_fit_are_terminal(tmp_path):
    with pytest.raises(TerminalError, match=r"^delta: reading table shop.t: .*"):
        with delta_errors("reading table shop.t"):
            DeltaTable(str(tmp_path / "nothing"))
    write_deltalake(str(tmp_path / "t"), pa.table({"a": pa.array([1], pa.int8())}))
    with pytest.raises(TerminalError) as err:
        with delta_errors("appending to table shop.t"):
            write_deltalake(str(tmp_path / "t"), pa.table({"a": pa.array([1000], pa.int64())}),
                            mode="append")
    assert "\n" not in str(err.value) and not isinstance(err.value, TransientError)
