"""A griffe extension for the API reference: fubench's docstrings are written with
Sphinx roles (:class:`Dataset`, :mod:`fubench.engine`), which Markdown would show as
raw text; this turns each into inline code (`Dataset`), and a reST literal block's
``Example::`` into ``Example:``, before mkdocstrings renders the docstring."""

from __future__ import annotations

import re

import griffe

#: a paragraph ending in ``::`` introduces a literal block in reST; Markdown's indented
#: block needs only the colon
LITERAL_INTRO = re.compile(r"(\S)::$", re.MULTILINE)
#: ``:role:`target``` and ``:role:`~target``` (the tilde shortens a path in Sphinx)
ROLE = re.compile(r":(?:py:)?(?:class|mod|func|meth|attr|data|obj|exc):`~?([^`]+)`")


class SphinxRolesAsCode(griffe.Extension):
    """Rewrite Sphinx roles in every docstring griffe loads as Markdown code spans."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: object) -> None:
        if obj.docstring is not None:
            text = ROLE.sub(r"`\1`", obj.docstring.value)
            obj.docstring.value = LITERAL_INTRO.sub(r"\1:", text)
