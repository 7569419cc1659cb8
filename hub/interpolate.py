"""``${VAR}`` and ``${VAR:-default}`` in the string values of a pipeline file.

Interpolation runs on parsed values, never on the raw text, so an environment value can't
change the structure of the file (a ``"`` or a newline in a password stays inside its string).
``${VAR:-default}`` uses the default when VAR is unset or empty, as the shell does.
``$${`` is a literal ``${``.  Values are substituted silently: they may be secrets.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from hub.errors import KeyPath

# ``$${`` (escape) or ``${...}``; the body is checked separately so that a malformed reference
# gets a message of its own instead of passing through as text.
_REFERENCE = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_BODY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?$", re.DOTALL)


def interpolate(value: Any, env: Mapping[str, str], path: KeyPath = ()
                ) -> tuple[Any, list[tuple[KeyPath, str]]]:
    """``value`` (a parsed TOML tree) with references replaced, and the problems found as
    ``(key path, message)`` pairs.  A reference that can't be resolved is left as written."""
    problems: list[tuple[KeyPath, str]] = []
    return _walk(value, env, path, problems), problems


def _walk(value: Any, env: Mapping[str, str], path: KeyPath,
          problems: list[tuple[KeyPath, str]]) -> Any:
    if isinstance(value, str):
        return _substitute(value, env, path, problems)
    if isinstance(value, dict):
        return {k: _walk(v, env, path + (k,), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, env, path + (i,), problems) for i, v in enumerate(value)]
    return value


def _substitute(text: str, env: Mapping[str, str], path: KeyPath,
                problems: list[tuple[KeyPath, str]]) -> str:
    def replace(m: re.Match[str]) -> str:
        if m.group(0) == "$${":
            return "${"
        body = _BODY.match(m.group(1))
        if body is None:
            problems.append((path, f"malformed reference {m.group(0)!r}: "
                                   "write ${NAME} or ${NAME:-default}"))
            return m.group(0)
        name, default = body.group(1), body.group(2)
        # Shell semantics: ``:-`` also replaces a variable that is set but empty.
        if name in env and (default is None or env[name] != ""):
            return env[name]
        if default is not None:
            return default
        problems.append((path, f"environment variable {name} is not set "
                               f"(write ${{{name}:-default}} to give a default)"))
        return m.group(0)

    result = _REFERENCE.sub(replace, text)
    if "${" in _REFERENCE.sub("", text):
        problems.append((path, "unterminated '${' reference (missing '}')"))
    return result
