"""The documentation stays true to the code: generated tables are current, every connector has
a page linked from docs/README.md, every example validates, and the README and docs link
nothing outside the repository."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from hub.config import load_pipeline
from runtime import plugins

ROOT = Path(__file__).resolve().parents[3]
DOCS = ROOT / "docs"
_LINK = re.compile(r"\]\(([^)\s]+)\)|<(https?://[^>]+)>")
_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)
#: What the examples' ${VAR} references need (secrets have no defaults).
ENV = {"MYSQL_PASSWORD": "x", "PGPASSWORD": "x"}


def test_generated_tables_are_current() -> None:
    done = subprocess.run([sys.executable, str(DOCS / "gen.py"), "--check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_every_connector_has_a_page_linked_from_the_index() -> None:
    index = (DOCS / "README.md").read_text()
    for kind in ("source", "sink"):
        for name in plugins.available(kind):
            page = f"connectors/{name}-{kind}.md"
            assert (DOCS / page).is_file(), page
            assert f"]({page})" in index, page
            text = (DOCS / page).read_text()
            for heading in ("## Options", "## Types", "## Guarantees", "## Failure behaviour",
                            "## Example"):
                assert heading in text, (page, heading)
            assert f"<!-- BEGIN GENERATED options {kind} {name} -->" in text, page


def _examples() -> list[tuple[str, str]]:
    out = []
    for page in sorted(DOCS.rglob("*.md")):
        for i, block in enumerate(re.findall(r"```toml\n(.*?)```", page.read_text(), re.S)):
            out.append((f"{page.relative_to(ROOT)}#{i}", block))
    return out


@pytest.mark.parametrize("where,text", _examples(), ids=[w for w, _ in _examples()])
def test_every_example_validates(where: str, text: str, tmp_path: Path) -> None:
    path = tmp_path / "example.toml"
    path.write_text(text)
    load_pipeline(str(path), env=ENV)  # raises ConfigErrors naming each problem


@pytest.mark.parametrize("page", [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_links_stay_inside_the_repository(page: Path) -> None:
    text = _CODE.sub("", page.read_text())
    for m in _LINK.finditer(text):
        target = m.group(1) or m.group(2)
        assert not re.match(r"[a-z][a-z0-9+.-]*:", target), f"{page.name}: external {target}"
        resolved = (page.parent / target.split("#")[0]).resolve()
        assert resolved.is_relative_to(ROOT), f"{page.name}: outside the repository {target}"
        assert resolved.exists(), f"{page.name}: broken link {target}"


def test_the_license_is_apache_2() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
