"""Small pieces every section of the HTML page is made of: escaping, badges, tables."""

from __future__ import annotations

from html import escape
from typing import Any


def e(value: Any) -> str:
    """A value as escaped text; a missing value reads as a dash, a boolean as yes or no."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return escape(str(value))


def badge(result: str) -> str:
    css = "b-" + result.replace(" ", "-").replace("/", "-")
    return f'<span class="badge {css}">{escape(result)}</span>'


def table(headers: list[str], rows: list[str], cls: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def seconds(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, int | float) and not isinstance(value, bool) else "—"


def codes(items: list[Any]) -> str:
    """A comma-separated list of code-formatted values, or a dash when empty."""
    return ", ".join(f"<code>{e(i)}</code>" for i in items) or "—"
