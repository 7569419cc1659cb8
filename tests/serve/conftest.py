from __future__ import annotations

import warnings

import pytest

pytest.importorskip("fastapi")
with warnings.catch_warnings():
    # Starlette 1.x asks for httpx2 instead of httpx; the TestClient works with either
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

from hub.service.api import create_app  # noqa: E402
from hub.service.supervisor import Supervisor  # noqa: E402


@pytest.fixture
def supervisor(tmp_path):
    sup = Supervisor(str(tmp_path / "state"))
    sup.open()
    yield sup
    sup.close(wait_s=30)


@pytest.fixture
def client(supervisor):
    with TestClient(create_app(supervisor), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def token_client(supervisor):
    with TestClient(create_app(supervisor, token="t0ken-xyz"),
                    raise_server_exceptions=False) as c:
        yield c
