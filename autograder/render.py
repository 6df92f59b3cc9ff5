"""One verdict, three renderings: HTML for Jupyter, rich for the terminal, plain text for nbgrader.

Every function here is pure: it takes the verdict dict that
:meth:`autograder.runner.Verdict.to_json` produces::

    {"id": "01.generate_batch", "title": "...", "points": 6.0, "max_points": 8.0,
     "passed": False, "message": "...",
     "properties": [{"test": "test_shape_and_dtype", "points": 2.0, "max_points": 2.0,
                     "passed": True, "message": ""}, ...]}

and returns a string (or a rich renderable); nothing is printed. The
properties are shown in the order they come in (the exercise's order), each
with its points; a failed property's message follows it. Text between
backticks is code: ``<code>`` in HTML, a code style in rich, and kept as
typed in plain text. The first line always reads ``[PASS]`` or ``[FAIL]``,
the exercise and ``N/M points``, in every rendering.
"""

from __future__ import annotations

import html
import re
import textwrap
from typing import Any, Mapping

__all__ = ["verdict_html", "verdict_text", "verdict_rich", "property_label", "headline", "TEXT_WIDTH"]

TEXT_WIDTH = 78
"""Columns of :func:`verdict_text` (nbgrader shows it in a fixed-width block)."""
HEADLINE_WIDTH = 100
"""The headline is wrapped only past this many columns."""

_CODE = re.compile(r"`([^`\n]+)`")
_GREEN, _AMBER, _RED = "#1a7f37", "#9a6700", "#cf222e"
_KEYS = ("id", "title", "points", "max_points", "properties")


def _validate(v: Mapping[str, Any]) -> None:
    if not isinstance(v, Mapping):
        raise TypeError(f"v must be a verdict dict (Verdict.to_json()), got {type(v).__name__}")
    missing = [k for k in _KEYS if k not in v]
    if missing:
        raise ValueError(f"v must have the keys {', '.join(_KEYS)}; missing {', '.join(missing)}")


def _passed(v: Mapping[str, Any]) -> bool:
    return bool(v.get("passed", v["points"] == v["max_points"]))


def _points(points: float, max_points: float) -> str:
    return f"{float(points):g}/{float(max_points):g}"


def property_label(test: str) -> str:
    """``"test_shape_and_dtype"`` -> ``"shape and dtype"``: a property's name in words."""
    return str(test).removeprefix("test_").replace("_", " ")


def headline(v: Mapping[str, Any]) -> str:
    """``[PASS] 01.generate_batch Sparse features ...: 8/8 points`` (plain text, one line)."""
    _validate(v)
    mark = "PASS" if _passed(v) else "FAIL"
    return f"[{mark}] {v['id']} {v['title']}: {_points(v['points'], v['max_points'])} points"


def _rows(v: Mapping[str, Any]) -> list[tuple[bool, str, str, str]]:
    """``(passed, label, points, message or "")`` per property; a message already shown becomes a pointer."""
    rows, said = [], set()
    for p in v["properties"]:
        ok = bool(p.get("passed"))
        message = "" if ok else str(p.get("message") or "")
        if message and message in said:
            message = "(the same reason as above)"
        elif message:
            said.add(message)
        rows.append((ok, property_label(p.get("test", "")), _points(p.get("points", 0), p.get("max_points", 0)), message))
    return rows


def verdict_text(v: Mapping[str, Any], width: int = TEXT_WIDTH) -> str:
    """The verdict as plain text, wrapped at word boundaries to ``width`` columns.

    One headline, then one line per property (``ok`` or ``FAIL``, its points,
    its name), a failed property's message indented under it. Backticks are
    kept. Used for nbgrader's feedback and anywhere without colours.
    """
    _validate(v)
    if isinstance(width, bool) or not isinstance(width, int) or width < 40:
        raise ValueError(f"width must be an integer >= 40, got {width!r}")
    nbsp = "\u00a0"  # keeps "N/M points" on one line; textwrap splits on ASCII whitespace only
    head = headline(v).replace(" points", nbsp + "points")
    lines = [
        line.replace(nbsp, " ")
        # The headline may run a little past ``width`` rather than leave its points alone on a line.
        for line in textwrap.wrap(head, max(width, HEADLINE_WIDTH), subsequent_indent="    ",
                                  break_long_words=False, break_on_hyphens=False)
    ]
    for ok, label, pts, message in _rows(v):
        lines += textwrap.wrap(
            f"{'ok' if ok else 'FAIL':<5} {pts:>5}  {label}", width,
            initial_indent="  ", subsequent_indent=" " * 15, break_long_words=False, break_on_hyphens=False,
        )
        if message:
            lines += textwrap.wrap(
                message, width, initial_indent=" " * 15, subsequent_indent=" " * 15,
                break_long_words=False, break_on_hyphens=False,
            )
    return "\n".join(lines)


def _html_inline(text: str) -> str:
    return _CODE.sub(r"<code>\1</code>", html.escape(text, quote=False))


def verdict_html(v: Mapping[str, Any]) -> str:
    """The verdict as one self-contained HTML block (inline styles: JupyterLab, nbconvert, static sites).

    The headline keeps the literal ``[PASS]``/``[FAIL]`` and ``N/M points``;
    each property is a row coloured green or red, its message wrapped at word
    boundaries, backticked text as ``<code>``.
    """
    _validate(v)
    passed = _passed(v)
    colour = _GREEN if passed else (_AMBER if float(v["points"]) else _RED)
    mark = "PASS" if passed else "FAIL"
    parts = [
        f'<div class="sc-verdict" style="border-left:4px solid {colour};padding:0.3em 0.8em;margin:0.3em 0;'
        'font-family:var(--jp-ui-font-family,system-ui,sans-serif);line-height:1.45;white-space:normal;'
        'overflow-wrap:normal;word-break:normal">',
        f'<div class="sc-verdict-head"><b style="color:{colour}">[{mark}]</b> <b>{html.escape(str(v["id"]))}</b> '
        f'{_html_inline(str(v["title"]))}: <b style="color:{colour}">'
        f'{_points(v["points"], v["max_points"])} points</b></div>',
        '<table class="sc-verdict-properties" style="border-collapse:collapse;margin-top:0.2em">',
    ]
    for ok, label, pts, message in _rows(v):
        c = _GREEN if ok else _RED
        cell = "padding:0.1em 0.6em 0.1em 0;vertical-align:top;text-align:left"
        detail = f'<div style="color:var(--jp-ui-font-color1,#24292f)">{_html_inline(message)}</div>' if message else ""
        parts.append(
            f'<tr class="sc-property {"sc-pass" if ok else "sc-fail"}">'
            f'<td style="{cell};color:{c};font-weight:bold">{"ok" if ok else "FAIL"}</td>'
            f'<td style="{cell};text-align:right;font-variant-numeric:tabular-nums">{pts}</td>'
            f'<td style="{cell}">{_html_inline(label)}{detail}</td></tr>'
        )
    parts.append("</table></div>")
    return "".join(parts)


def _rich_inline(text: str, base: str = ""):
    from rich.text import Text

    out = Text(style=base)
    pos = 0
    for m in _CODE.finditer(text):
        out.append(text[pos : m.start()])
        out.append(m.group(1), style="bold cyan")
        pos = m.end()
    out.append(text[pos:])
    return out


def verdict_rich(v: Mapping[str, Any]):
    """The verdict as a rich renderable (a :class:`rich.console.Group`) for the terminal.

    Same content as :func:`verdict_text`; rich wraps it at word boundaries to
    the terminal's width, colours ``ok``/``FAIL`` and styles backticked code.
    """
    from rich.console import Group
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    _validate(v)
    passed = _passed(v)
    colour = "green" if passed else ("yellow" if float(v["points"]) else "red")
    head = Text()
    head.append(f"[{'PASS' if passed else 'FAIL'}]", style=f"bold {colour}")
    head.append(f" {v['id']} ", style="bold")
    head.append_text(_rich_inline(str(v["title"])))
    head.append(": ")
    head.append(f"{_points(v['points'], v['max_points'])} points", style=f"bold {colour}")
    table = Table.grid(padding=(0, 1))
    table.add_column(width=4)
    table.add_column(justify="right")
    table.add_column(ratio=1)
    for ok, label, pts, message in _rows(v):
        body = _rich_inline(label)
        if message:
            body.append("\n")
            body.append_text(_rich_inline(message, base="dim" if message.startswith("(the same") else ""))
        table.add_row(Text("ok" if ok else "FAIL", style="green" if ok else "bold red"), pts, body)
    return Group(head, Padding(table, (0, 0, 0, 2)))
