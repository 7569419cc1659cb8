"""``partition-keys`` of a ``[[transform]]``: a lake sink (Delta, on a local folder) creates
the table partitioned by them; a sink that does not partition says at start it ignores them."""
from __future__ import annotations

import pytest

from tests.killing import datagen_pipeline, run_to_end

pytestmark = [pytest.mark.integration, pytest.mark.transform, pytest.mark.delta]

TRANSFORM = """
[[transform]]
source-table = 'datagen\\.orders'
projection = "*, UPPER(status) AS status_uc"
partition-keys = "status_uc"
"""


def test_delta_table_partitioned_by_the_transforms_partition_keys(tmp_path):
    from deltalake import DeltaTable

    lake = tmp_path / "lake"
    path = datagen_pipeline(tmp_path / "p.toml", f'[sink]\ntype = "delta"\npath = "{lake}"\n',
                            name="t-parts", state=str(tmp_path / "state"), rows=400, rps=0,
                            parallelism=1)
    with open(path, "a") as f:
        f.write(TRANSFORM)
    run_to_end(path)
    orders = DeltaTable(str(lake / "datagen" / "orders"))
    assert orders.metadata().partition_columns == ["status_uc"]
    rows = orders.to_pyarrow_table().to_pylist()
    assert rows and all(r["status_uc"] == r["status"].upper() for r in rows)
    # customers: no transform, no partition keys
    assert DeltaTable(str(lake / "datagen" / "customers")).metadata().partition_columns == []


def test_a_sink_that_does_not_partition_ignores_them_with_a_line_at_start(tmp_path):
    path = datagen_pipeline(tmp_path / "p.toml", '[sink]\ntype = "blackhole"\n',
                            name="t-parts-bh", state=str(tmp_path / "state"), rows=50, rps=0,
                            parallelism=1)
    with open(path, "a") as f:
        f.write(TRANSFORM)
    err = run_to_end(path)
    assert "the blackhole sink does not partition tables: partition-keys of the transforms " \
           "of datagen\\.orders ignored" in err


@pytest.mark.iceberg
def test_iceberg_table_partitioned_by_the_transforms_partition_keys(tmp_path):
    from pyiceberg.catalog.sql import SqlCatalog

    wh = tmp_path / "wh"
    path = datagen_pipeline(tmp_path / "p.toml",
                            f'[sink]\ntype = "iceberg"\nwarehouse = "{wh}"\n',
                            name="t-parts-ice", state=str(tmp_path / "state"), rows=300, rps=0,
                            parallelism=1)
    with open(path, "a") as f:
        f.write(TRANSFORM)
    run_to_end(path)
    catalog = SqlCatalog("hub", uri=f"sqlite:///{wh}/catalog.db", warehouse=f"file://{wh}")
    table = catalog.load_table(("datagen", "orders"))
    [field] = table.spec().fields
    assert table.schema().find_field(field.source_id).name == "status_uc"
    assert str(field.transform) == "identity"
    assert not catalog.load_table(("datagen", "customers")).spec().fields
