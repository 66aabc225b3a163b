"""Inline text of the reports, and how it is written safely as markdown and as HTML.

Reports mix fixed words with text from result files and plugins (row labels, errors,
descriptions, claim sources...), which may hold anything: ``x | <script>``, newlines,
``[a](javascript:...)``. The words are therefore kept as :class:`Span` s — plain, bold
or code, maybe linked — and only the renderers turn them into markup, escaping every
piece of text on the way:

* markdown (:func:`to_markdown`, :func:`md_text`): newlines become spaces; ``\\``, ``|``,
  ``&`` and ``<`` are escaped (so no table cell is split and no HTML tag or entity comes
  through), and ``](`` is broken so that text cannot form a link. ``>`` is left as it
  is — without ``<`` it opens no tag, and ``->`` stays readable in the source — except
  at the start of a line, where :func:`md_line_start` escapes it with the other block
  markers;
* HTML (:func:`to_html`): :func:`html.escape` on every text and attribute value;
* links: a target is written only when :func:`safe_href` accepts it (a relative path or
  an http(s) URL); otherwise the text stands alone.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote, urlsplit


@dataclass(frozen=True)
class Span:
    """A piece of inline text: plain, ``strong`` or ``code``, linked to ``href`` if set."""

    text: str
    style: str = ""  # "", "strong" or "code"
    href: str | None = None


Inline = tuple[Span, ...]


def inline(*parts: str | Span | Iterable[Span]) -> Inline:
    """Inline text from plain strings, spans and other inline texts, in order."""
    spans: list[Span] = []
    for part in parts:
        if isinstance(part, str):
            if part:
                spans.append(Span(part))
        elif isinstance(part, Span):
            spans.append(part)
        else:
            spans.extend(part)
    return tuple(spans)


def strong(text: object, href: str | None = None) -> Span:
    return Span(str(text), "strong", href)


def code(text: object, href: str | None = None) -> Span:
    return Span(str(text), "code", href)


def joined(items: Iterable[Span | str], separator: str = ", ") -> Inline:
    """``items`` with ``separator`` between them."""
    out: list[str | Span] = []
    for i, item in enumerate(items):
        if i:
            out.append(separator)
        out.append(item)
    return inline(*out)


def plain(text: Inline) -> str:
    """The words alone, without markup."""
    return "".join(span.text for span in text)


# ----------------------------------------------------------------------------- links
#: the characters a link target keeps as they are; the rest is percent-encoded (a space
#: or a parenthesis would end a markdown link)
URL_SAFE = "/:@!$&'*+,;=-._~%?#"


def safe_href(target: str | None) -> str | None:
    """``target`` percent-encoded where needed, if it is a relative path or an http(s)
    URL with a host; None for anything else (``javascript:``, ``data:``, ``//host``)."""
    if not target or any(ord(c) < 32 for c in target):
        return None
    parts = urlsplit(target)
    if parts.scheme in ("http", "https"):
        ok = bool(parts.netloc)
    else:
        ok = not parts.scheme and not target.startswith(("//", "\\")) and "\\" not in target
    return quote(target, safe=URL_SAFE) if ok else None


# -------------------------------------------------------------------------- markdown
_MD_TEXT = str.maketrans({"\\": "\\\\", "|": "\\|", "&": "&amp;", "<": "&lt;"})
#: what opens a block at the start of a markdown line: a heading, quote, list item,
#: table row, link definition, setext underline
_BLOCK_START = re.compile(r"^[#>+*=\-\[|]")
_NUMBERED = re.compile(r"^(\d+)([.)])")


def one_line(text: object) -> str:
    """``text`` on one line: every line break becomes a space."""
    return " ".join(str(text).splitlines())


def md_text(text: object) -> str:
    """Plain text for markdown, table cells included (see the module's rules)."""
    return one_line(text).translate(_MD_TEXT).replace("](", "]\\(")


def md_line_start(text: str) -> str:
    """Escaped markdown that begins a line: a leading block marker is escaped."""
    text = text.lstrip()
    if _BLOCK_START.match(text):
        return "\\" + text
    return _NUMBERED.sub(r"\1\\\2", text, count=1)


def md_code(text: object) -> str:
    """A code span holding ``text`` as it is (a backtick inside takes a longer fence)."""
    text = one_line(text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def to_markdown(text: Inline) -> str:
    return "".join(_md_span(span) for span in text)


def _md_span(span: Span) -> str:
    if span.style == "code":
        body = md_code(span.text)
    elif span.style == "strong":
        body = f"**{md_text(span.text)}**"
    else:
        body = md_text(span.text)
    href = safe_href(span.href)
    return f"[{body}]({href})" if href else body


# ------------------------------------------------------------------------------ HTML
def esc(text: object) -> str:
    """Text or an attribute value for HTML."""
    return html.escape(str(text), quote=True)


def to_html(text: Inline) -> str:
    return "".join(_html_span(span) for span in text)


def _html_span(span: Span) -> str:
    body = esc(span.text)
    if span.style == "code":
        body = f"<code>{body}</code>"
    elif span.style == "strong":
        body = f"<strong>{body}</strong>"
    href = safe_href(span.href)
    return f'<a href="{esc(href)}">{body}</a>' if href else body
