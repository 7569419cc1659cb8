"""Line numbers of keys, including the places a naive line scan gets wrong."""
from __future__ import annotations

import tomllib

from hub.errors import format_key, parse_key
from hub.tomlpos import KeyLines

DOC = '''# comment [not.a.table]
[a]
x = 1
y . z = { p = 1, q = [1, {r = 2}] }
s = """
[not]
k = 1 \\""" still inside
"""
arr = [
  1,  # comment
  "two, ] three",
]
[[b]]
n = 1
[b.c]
m = 2
[[b]]
n = 2
"quoted.key" = 'v'
lit = \'\'\'
x = 1\'\'\'
after = true
'''


def test_key_lines() -> None:
    tomllib.loads(DOC)  # the scanner only ever sees valid TOML
    lines = KeyLines(DOC)
    assert lines.exact(("a",)) == 2
    assert lines.exact(("a", "x")) == 3
    assert lines.exact(("a", "y", "z", "q", 1, "r")) == 4
    assert lines.exact(("a", "s")) == 5
    assert lines.exact(("not",)) is None and lines.exact(("a", "k")) is None
    assert lines.exact(("a", "arr", 1)) == 11
    assert lines.exact(("b", 0, "c", "m")) == 16
    assert lines.exact(("b", 1, "n")) == 18
    assert lines.exact(("b", 1, "quoted.key")) == 19
    assert lines.exact(("b", 1, "x")) is None
    assert lines.exact(("b", 1, "after")) == 22
    # A key the file lacks points at its nearest defined table.
    assert lines.line_of(("b", 0, "c", "missing")) == 15
    assert lines.line_of(("zzz",)) is None


def test_crlf() -> None:
    text = "[a]\r\nx = 1\r\n\r\n[b]\r\ny = 'q'\r\n"
    assert KeyLines(text).exact(("b", "y")) == 5


def test_key_paths_round_trip() -> None:
    path = ("source", "tables", 0, "name")
    assert format_key(path) == "source.tables[0].name"
    assert parse_key("source.tables[0].name") == path
    assert format_key(("sink", "a.b")) == 'sink."a.b"'


def test_interpolate_edge_cases() -> None:
    from hub.interpolate import interpolate

    value, problems = interpolate({"a": ["${X}", "${X:-d}-${Y:-}", 1], "b": "oops ${X"},
                                  {"X": "${Y}"})
    # Substituted text is not scanned again: an env value can't pull in other variables.
    assert value == {"a": ["${Y}", "${Y}-", 1], "b": "oops ${X"}
    assert problems == [(("b",), "unterminated '${' reference (missing '}')")]
