"""The API against its own OpenAPI document (schemathesis): every operation, with generated
valid and invalid requests (bodies of random bytes, broken and valid TOML, bad JSON, bad path
and query values), answers as documented and never with a 5xx."""
from __future__ import annotations

import shutil
import tempfile

import pytest

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import positive_data_acceptance  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from hub.service.api import create_app  # noqa: E402
from hub.service.supervisor import Supervisor  # noqa: E402
from tests.serve.helpers import datagen_toml  # noqa: E402

pytestmark = pytest.mark.serve

#: Pipeline files: random bytes and text, broken TOML, valid bounded pipelines (they finish
#: at once, so created ones cost nothing).
TOML = st.one_of(
    st.binary(max_size=120),
    st.text(max_size=120).map(str.encode),
    st.sampled_from([b"[pipeline\n", b"[pipeline]\nname = 1\n", b"[source]\ntype = 'x'\n",
                     b"[pipeline]\nname = 'a b'\n[source]\ntype='datagen'\n[sink]\ntype='x'\n"]),
    st.integers(0, 10**6).map(lambda i: datagen_toml(f"gen-{i}", rps=0, rows=10).encode()),
)
schemathesis.openapi.media_type("application/toml", TOML)
schemathesis.openapi.media_type("text/plain", TOML)


# schemathesis loads the schema when the module is imported: the app is made here, over a
# supervisor opened (and closed, its pipelines stopped) by the module's fixture
_STATE = tempfile.mkdtemp(prefix="hub-openapi-")
_SUPERVISOR = Supervisor(_STATE)
schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(_SUPERVISOR))
#: the same pipelines behind a token: the document declares it, and a request without it (or
#: with a wrong one) must get a 401 (schemathesis' ignored_auth check)
TOKEN = "openapi-t0ken"
guarded = schemathesis.openapi.from_asgi("/openapi.json", create_app(_SUPERVISOR, TOKEN))


@pytest.fixture(scope="module", autouse=True)
def _supervisor():
    _SUPERVISOR.open()
    yield
    _SUPERVISOR.close(wait_s=30)
    shutil.rmtree(_STATE, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case):
    _check(case, case.call())


@guarded.parametrize()
@settings(max_examples=5, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_api_with_a_token_conforms_to_its_openapi_document(case):
    _check(case, case.call(headers={"Authorization": f"Bearer {TOKEN}"}))


def _check(case, response) -> None:
    # a pipeline file is a string to the schema: which strings are valid TOML pipelines it
    # can't say, so a schema-valid body may well get a 400 naming its problems
    case.validate_response(response, excluded_checks=[positive_data_acceptance])
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert body["error_code"] == response.status_code and body["message"], body
        assert "\n" not in body["message"] and "Traceback" not in response.text
