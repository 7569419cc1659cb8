"""The text ``hub plugins`` prints: plugins and sections with their options, wrapped to a width.

Each option is one row of aligned columns (name, type, default) followed by its description,
wrapped so that continuation lines stay in the description column.  When the columns leave the
description too little room (a narrow terminal, a long type such as a list of modes), the
description goes below the row, indented, using the whole width.
"""
from __future__ import annotations

import textwrap
from collections.abc import Sequence

from hub.registry import KINDS, OptionInfo, PluginInfo

#: Headings of the groups, in the order printed.
GROUPS = (*[(k, f"{k}s:") for k in KINDS], ("section", "pipeline sections:"))
#: Narrowest description column worth keeping beside the row.
MIN_DESCRIPTION = 30
ROW_INDENT = 6
#: Widest name, type and default kept in the aligned columns.
CAPS = (28, 24, 28)


def format_plugins(infos: Sequence[PluginInfo], width: int = 100) -> list[str]:
    """Readable lines: a heading per kind, each plugin with its summary, then its options.
    No line is longer than ``width`` unless a single word (a long default) is."""
    lines: list[str] = []
    for kind, heading in GROUPS:
        group = [i for i in infos if i.kind == kind]
        if not group:
            continue
        if lines:
            lines.append("")
        lines.append(heading)
        for info in group:
            lines += format_plugin(info, width)
    return lines


def format_plugin(info: PluginInfo, width: int = 100) -> list[str]:
    """One plugin or section: its title line(s), then its options."""
    name = f"[{info.name}]" if info.kind == "section" else info.name
    if info.error:
        state = "not installed" if info.missing_extra else "BROKEN"
        return _wrap(f"  {name}  {state}: {info.error}", width, indent=6)
    title = f"  {name}" + (f"  - {info.summary}" if info.summary else "")
    return _wrap(title, width, indent=len(name) + 6) + format_options(info.options, width)


def format_options(options: Sequence[OptionInfo], width: int = 100) -> list[str]:
    rows = [(o.name, o.type, "required" if o.required else f"default {o.default}",
             o.description) for o in options]
    # An outlier (a long list of modes, a long default) gets its description below it rather
    # than pushing every other row's description to the right.
    fits = [r for r in rows if all(len(r[c]) <= cap for c, cap in enumerate(CAPS))]
    widths = [max((len(r[c]) for r in fits), default=0) for c in range(3)]
    column = ROW_INDENT + sum(widths) + 2 * 3  # where descriptions start beside the row
    beside = width - column >= MIN_DESCRIPTION
    lines: list[str] = []
    for row in rows:
        if beside and row in fits:
            head = " " * ROW_INDENT + "  ".join(row[c].ljust(widths[c]) for c in range(3))
            text = textwrap.wrap(row[3], width - column, break_on_hyphens=False) or [""]
            lines.append((head + "  " + text[0]).rstrip())
            lines += [" " * column + t for t in text[1:]]
        else:
            lines += _wrap(" " * ROW_INDENT + "  ".join(row[:3]), width, ROW_INDENT + 4)
            lines += textwrap.wrap(row[3], width, initial_indent=" " * (ROW_INDENT + 4),
                                   subsequent_indent=" " * (ROW_INDENT + 4),
                                   break_on_hyphens=False)
    return lines


def _wrap(text: str, width: int, indent: int) -> list[str]:
    return textwrap.wrap(text, width, subsequent_indent=" " * indent, break_on_hyphens=False,
                         drop_whitespace=True) or [text]
