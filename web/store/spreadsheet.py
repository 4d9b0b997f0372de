"""CSV cells that a spreadsheet opens as text, never as a formula."""

from __future__ import annotations

# a cell starting with one of these is read as a formula (or a DDE call) by spreadsheets
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "|", "%")


def cell(value: object) -> str:
    """`value` as a CSV cell: None is empty; text that could start a formula is quoted."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    # a leading space does not stop some spreadsheets from reading "  =1+1" as a formula
    if text.lstrip(" ")[:1] in _FORMULA_START:
        return "'" + text
    return text
