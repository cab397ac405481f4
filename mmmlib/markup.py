"""Values into HTML, escaped for where they land: element text, a double-quoted attribute, a URL path part.

Run ids, folder names, client names, channel labels, file names and everything in a run's ``summary.json`` are
chosen by a client's writers, and the pages built from them are opened by other people (executives, the
gallery's readers). Every view and the gallery write such values into HTML through these helpers only, so
that a value can never close a tag or an attribute and add its own script.
"""

from __future__ import annotations

import html
from urllib.parse import quote


def text(value: object) -> str:
    """Element text or a double-quoted attribute value: ``& < > " '`` escaped."""
    return html.escape(str(value), quote=True)


def path_part(value: object) -> str:
    """One segment of a URL path: everything but letters, digits and ``_.-~`` percent-encoded (``/`` too)."""
    return quote(str(value), safe="")


def query_value(value: object) -> str:
    """A value after ``?name=``: percent-encoded, ``/`` kept (paths stay readable)."""
    return quote(str(value), safe="/")


def attributes(**values: str) -> str:
    """`` name="value"`` pairs for a tag, each value escaped and double-quoted; ``class_`` becomes ``class``."""
    return "".join(f' {name.rstrip("_")}="{text(value)}"' for name, value in values.items())


def link(href: str, label: str, **more: str) -> str:
    """``<a href="…" …>label</a>`` with every attribute escaped and the label escaped as text.

    ``href`` must already have its variable parts encoded with ``path_part`` or ``query_value``.
    """
    return f"<a{attributes(href=href, **more)}>{text(label)}</a>"
