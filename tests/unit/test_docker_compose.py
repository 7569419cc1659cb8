"""docker-compose.yml against the README's table of ``HUB_TEST_*`` variables and the test
servers that read them: every variable names services that exist and publish the example's
port, and every variable a test server reads is in the table.  No Docker needed."""
from __future__ import annotations

import glob
import os
import re

import pytest

yaml = pytest.importorskip("yaml")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_ROW = re.compile(r"^\| `(HUB_TEST_\w+)` \| `([^`]+)`(.*)\| (.+) \|$")


def _services() -> dict:
    with open(os.path.join(ROOT, "docker-compose.yml")) as f:
        return yaml.safe_load(f)["services"]


def _table() -> list[tuple[str, str, str, list[str]]]:
    """(variable, example, note, compose services) of each row of the README's table."""
    with open(os.path.join(ROOT, "README.md")) as f:
        text = f.read()
    section = text.split("### Running the tests against docker-compose", 1)[1].split("\n#", 1)[0]
    rows = [_ROW.match(line) for line in section.splitlines()]
    return [(m.group(1), m.group(2), m.group(3), re.findall(r"`([\w-]+)`", m.group(4)))
            for m in rows if m]


def _servers_source() -> str:
    out = []
    for path in glob.glob(os.path.join(ROOT, "tests", "servers", "*.py")):
        with open(path) as f:
            out.append(f.read())
    return "\n".join(out)


def test_every_service_has_an_image_published_ports_and_a_healthcheck():
    for name, svc in _services().items():
        assert svc.get("image"), name
        assert svc.get("ports"), name
        assert svc.get("healthcheck", {}).get("test"), name


def test_the_readme_table_matches_the_services_and_the_test_servers():
    services, source = _services(), _servers_source()
    rows = _table()
    assert len(rows) >= 8
    for var, example, note, names in rows:
        assert names and all(n in services for n in names), (var, names)
        port = int(re.search(r"127\.0\.0\.1:(\d+)", example).group(1))
        published = {int(str(p).split(":")[0]) for n in names for p in services[n]["ports"]}
        assert port in published, (var, example, names)
        assert f'"{var}"' in source, f"no test server reads {var}"
        for flag in re.findall(r"(HUB_TEST_\w+)=", note):
            assert f'"{flag}"' in source, f"no test server reads {flag}"


def test_every_variable_a_test_server_reads_is_in_the_table():
    read = set(re.findall(r'environ\.get\("(HUB_TEST_\w+)"', _servers_source()))
    rows = _table()
    documented = {var for var, *_ in rows} | {
        flag for _, _, note, _ in rows for flag in re.findall(r"(HUB_TEST_\w+)=", note)}
    assert read and read <= documented, read - documented


def test_the_compose_comments_give_the_readme_values():
    with open(os.path.join(ROOT, "docker-compose.yml")) as f:
        comments = re.findall(r"#\s+(HUB_TEST_\w+)=(\S+)", f.read())
    examples = {(var, example) for var, example, *_ in _table()}
    assert comments
    for var, value in comments:
        assert (var, value) in examples, (var, value)
