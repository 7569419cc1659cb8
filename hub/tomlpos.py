"""Line numbers of keys in a TOML document, for error messages.

``tomllib`` gives values but no positions, so this module re-scans the text.  It runs only on
text ``tomllib`` already accepted, so it skips values instead of checking them; it understands
table headers, arrays of tables, dotted keys, quoted keys, inline tables, (multi-line) arrays
and all four string forms, which is what can hide a ``key =`` or a ``[`` from a naive scan.
"""
from __future__ import annotations

import json
import logging

from hub.errors import KeyPath

log = logging.getLogger(__name__)

_BARE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


class KeyLines:
    """Where each key path of one document is first defined."""

    def __init__(self, text: str):
        self._lines: dict[KeyPath, int] = {}
        try:
            _Scanner(text, self._lines).document()
        except Exception as exc:  # noqa: BLE001 - positions are a nicety; never fail a load
            log.debug("key positions incomplete after %d keys: %r", len(self._lines), exc)

    def line_of(self, path: KeyPath) -> int | None:
        """The line of ``path``, else of its longest defined prefix (a missing option points
        at its table), else None."""
        for end in range(len(path), 0, -1):
            line = self._lines.get(path[:end])
            if line is not None:
                return line
        return None

    def exact(self, path: KeyPath) -> int | None:
        """The line of ``path`` itself, None when the document does not define it."""
        return self._lines.get(path)


class _Scanner:
    def __init__(self, text: str, lines: dict[KeyPath, int]):
        self.s = text
        self.i = 0
        self.line = 1
        self.lines = lines
        # Array-of-tables path -> how many elements seen so far (``[[a]]`` twice -> 2).
        self.aot: dict[KeyPath, int] = {}

    # -- characters ---------------------------------------------------------------------

    def peek(self, n: int = 1) -> str:
        return self.s[self.i:self.i + n]

    def advance(self, n: int = 1) -> None:
        self.line += self.s.count("\n", self.i, self.i + n)
        self.i += n

    def skip_blank(self, newlines: bool) -> None:
        """Skip spaces and tabs; with ``newlines`` also line breaks and comments."""
        while self.i < len(self.s):
            c = self.s[self.i]
            if c in " \t":
                self.advance()
            elif newlines and c in "\r\n":
                self.advance()
            elif newlines and c == "#":
                self.skip_comment()
            else:
                return

    def skip_comment(self) -> None:
        end = self.s.find("\n", self.i)
        self.advance((len(self.s) if end < 0 else end) - self.i)

    def expect(self, token: str) -> None:
        if not self.s.startswith(token, self.i):
            raise ValueError(f"expected {token!r} at line {self.line}")
        self.advance(len(token))

    # -- structure ----------------------------------------------------------------------

    def record(self, path: KeyPath, line: int) -> None:
        # Prefixes too: a dotted key ``a.b = 1`` is where table ``a`` is first mentioned.
        for end in range(1, len(path) + 1):
            self.lines.setdefault(path[:end], line)

    def document(self) -> None:
        table: KeyPath = ()
        while True:
            self.skip_blank(newlines=True)
            if self.i >= len(self.s):
                return
            line = self.line
            if self.peek(2) == "[[":
                self.advance(2)
                header = self.resolve(self.key())
                self.skip_blank(False)
                self.expect("]]")
                index = self.aot.get(header, 0)
                self.aot[header] = index + 1
                table = header + (index,)
                self.record(table, line)
            elif self.peek() == "[":
                self.advance()
                table = self.resolve(self.key())
                self.skip_blank(False)
                self.expect("]")
                self.record(table, line)
            else:
                path = table + self.key()
                self.skip_blank(False)
                self.expect("=")
                self.record(path, line)
                self.value(path)
            self.skip_blank(False)
            if self.peek() == "#":
                self.skip_comment()

    def resolve(self, header: KeyPath) -> KeyPath:
        """Insert array-of-tables indices: after ``[[a]]``, ``[a.b]`` is ``a[last].b``."""
        out: KeyPath = ()
        for part in header[:-1]:
            out += (part,)
            if out in self.aot:
                out += (self.aot[out] - 1,)
        return out + header[-1:]

    def key(self) -> KeyPath:
        parts: list[str | int] = []
        while True:
            self.skip_blank(False)
            c = self.peek()
            if c == '"':
                parts.append(self.basic_string(decode=True))
            elif c == "'":
                parts.append(self.literal_string())
            else:
                start = self.i
                while self.i < len(self.s) and self.s[self.i] in _BARE:
                    self.advance()
                if self.i == start:
                    raise ValueError(f"expected a key at line {self.line}")
                parts.append(self.s[start:self.i])
            self.skip_blank(False)
            if self.peek() != ".":
                return tuple(parts)
            self.advance()

    def value(self, path: KeyPath) -> None:
        self.skip_blank(False)
        if self.peek(3) in ('"""', "'''"):
            self.multiline_string(self.peek(3))
        elif self.peek() == '"':
            self.basic_string(decode=False)
        elif self.peek() == "'":
            self.literal_string()
        elif self.peek() == "{":
            self.inline_table(path)
        elif self.peek() == "[":
            self.array(path)
        else:
            # Numbers, booleans, dates: nothing inside them can open a string or a table.
            while self.i < len(self.s) and self.s[self.i] not in ",]}\r\n#":
                self.advance()

    def inline_table(self, path: KeyPath) -> None:
        self.expect("{")
        while True:
            self.skip_blank(newlines=True)
            if self.peek() == "}":
                self.advance()
                return
            line = self.line
            sub = path + self.key()
            self.skip_blank(False)
            self.expect("=")
            self.record(sub, line)
            self.value(sub)
            self.skip_blank(newlines=True)
            if self.peek() == ",":
                self.advance()

    def array(self, path: KeyPath) -> None:
        self.expect("[")
        index = 0
        while True:
            self.skip_blank(newlines=True)
            if self.peek() == "]":
                self.advance()
                return
            self.record(path + (index,), self.line)
            self.value(path + (index,))
            self.skip_blank(newlines=True)
            if self.peek() == ",":
                self.advance()
                index += 1

    # -- strings ------------------------------------------------------------------------

    def basic_string(self, decode: bool) -> str:
        start = self.i
        self.advance()
        while self.peek() not in ('"', ""):
            self.advance(2 if self.peek() == "\\" else 1)
        self.expect('"')
        raw = self.s[start:self.i]
        if not decode:
            return raw
        try:
            return json.loads(raw)  # TOML basic-string escapes are JSON's, bar two rare ones
        except ValueError:
            return raw[1:-1]

    def literal_string(self) -> str:
        self.advance()
        end = self.s.index("'", self.i)
        text = self.s[self.i:end]
        self.advance(end - self.i + 1)
        return text

    def multiline_string(self, quote: str) -> None:
        self.advance(3)
        while self.i < len(self.s):
            if quote == '"""' and self.peek() == "\\":
                self.advance(2)
            elif self.peek(3) == quote:
                self.advance(3)
                # Up to two quotes may sit right before the closing delimiter: """a""""".
                for _ in range(2):
                    if self.peek() == quote[0]:
                        self.advance()
                return
            else:
                self.advance()
        raise ValueError("unterminated multi-line string")
