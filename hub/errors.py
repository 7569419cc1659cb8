"""Errors of the product shell: all the problems of one pipeline file, reported together.

A user fixing a pipeline file wants every problem in one go, not one per run, so the loader
collects :class:`~runtime.errors.ConfigError` objects and raises them as one
:class:`ConfigErrors`.  Each problem renders compiler style (``FILE:LINE: key: message``) so
editors and terminals can jump to it.
"""
from __future__ import annotations

from collections.abc import Iterable

from runtime.errors import ConfigError, HubError

#: A key path inside a pipeline file: table keys and array indices (``("sink", "format")``).
KeyPath = tuple[str | int, ...]


def format_key(path: KeyPath) -> str:
    """``("source", "tables", 0, "name")`` -> ``source.tables[0].name``.

    Keys that are not bare TOML keys are quoted so the path stays unambiguous.
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = part if _is_bare(part) else '"' + part.replace('"', '\\"') + '"'
        out += f".{text}" if out else text
    return out


def parse_key(text: str) -> KeyPath:
    """Inverse of :func:`format_key` for bare keys: ``tables[0].name`` ->
    ``("tables", 0, "name")``.  Connectors report keys as such strings."""
    path: list[str | int] = []
    for part in text.split("."):
        name, _, rest = part.partition("[")
        if name:
            path.append(name)
        for index in rest.split("[") if rest else []:
            digits = index.rstrip("]")
            path.append(int(digits) if digits.isdigit() else digits)
    return tuple(path)


def _is_bare(key: str) -> bool:
    return bool(key) and all(c.isascii() and (c.isalnum() or c in "-_") for c in key)


class ConfigErrors(HubError):
    """Every problem found in one pipeline file (never empty).

    ``str(err)`` is one line per problem, in file order; problems without a line come last.
    """

    def __init__(self, path: str, errors: Iterable[ConfigError]):
        self.path = path
        # sorted() is stable: problems on one line keep the order they were found in.
        self.errors = sorted(errors, key=lambda e: (e.line is None, e.line or 0))
        if not self.errors:
            raise ValueError("ConfigErrors needs at least one error")
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        """One ``FILE[:LINE]: [key: ]message`` line per problem."""
        out = []
        for err in self.errors:
            where = f"{self.path}:{err.line}" if err.line else self.path
            key = f"{err.key}: " if err.key else ""
            out.append(f"{where}: {key}{err.message}")
        return out
