"""Learner markdown made safe to render anywhere: no script of a submission runs in anyone's browser.

A submission's markdown reaches HTML in nbgrader's formgrader (the instructor's
browser, logged in), in the feedback files and in any notebook viewer. Markdown
may hold raw HTML and ``javascript:`` links, and the pages load MathJax, whose
TeX has links of its own. :func:`safe_markdown` therefore renders the learner's
markdown to HTML with nbconvert's own renderer, keeps only an allowlist of
harmless tags and attributes (bleach; links only to ``http``, ``https`` and
``mailto``, images only from relative paths), and returns that HTML as the
cell's new source, on one line (so no markdown parser finds markdown in it
again), inside a block MathJax is told to skip. No script, event handler,
style, iframe, object, embed, form, ``javascript:`` or ``data:`` URL survives.
"""

from __future__ import annotations

import html

import bleach

__all__ = ["safe_markdown", "ALLOWED_TAGS", "ALLOWED_ATTRIBUTES", "ALLOWED_PROTOCOLS"]

ALLOWED_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "dd", "del", "details", "div", "dl", "dt", "em",
    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "s",
    "samp", "small", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th", "thead",
    "tr", "u", "ul", "var",
})
ALLOWED_ATTRIBUTES = {
    "a": ["href", "title"],
    "img": ["src", "alt", "title", "width", "height"],
    "ol": ["start"],
    "td": ["align", "colspan", "rowspan"],
    "th": ["align", "colspan", "rowspan"],
}
ALLOWED_PROTOCOLS = frozenset({"http", "https", "mailto"})
_IGNORE_MATH = "tex2jax_ignore mathjax_ignore"


def _attribute_ok(tag: str, name: str, value: str) -> bool:
    if name not in ALLOWED_ATTRIBUTES.get(tag, ()):
        return False
    if tag == "img" and name == "src":
        # Images only from the lesson's own files (relative paths); no data:, no other site.
        v = value.strip().lower()
        return ":" not in v.split("/", 1)[0] and not v.startswith("//")
    return True


def safe_markdown(source: str) -> str:
    """``source`` (a learner's markdown) as sanitised HTML on one line, ready to store as a markdown cell's source."""
    from nbconvert.filters.markdown import markdown2html_mistune

    try:
        rendered = markdown2html_mistune(source)
    except Exception:  # noqa: BLE001 - a renderer failure must not let the raw text through
        rendered = f"<pre>{html.escape(source)}</pre>"
    clean = bleach.clean(
        rendered, tags=ALLOWED_TAGS, attributes=_attribute_ok, protocols=ALLOWED_PROTOCOLS, strip=True,
        strip_comments=True,
    )
    one_line = clean.replace("\r", "").replace("\n", "&#10;")
    return f'<div class="{_IGNORE_MATH}">{one_line}</div>'
