"""Small fakes shared by the unit tests (no model is fitted here)."""

from __future__ import annotations


def raise_key_error(key: str) -> None:
    """A helper outside ``mmmlib`` and ``cli.py`` that fails the way a bug does."""
    return {}[key]
