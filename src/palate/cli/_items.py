"""Rich tables of ranked items (rank, id, title, genres, value, reasons) for the terminal.

What is shown of an item comes from :class:`palate.data.catalog.Catalog`; this module only
renders it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table


def items_table(
    rows: Sequence[dict[str, Any]],
    *,
    title: str | None = None,
    value_name: str | None = "score",
    value_format: str = "{:.3f}",
    with_titles: bool = True,
    value_key: str | None = None,
    reason_key: str | None = None,
) -> Table:
    """A Rich table of ranked items: rank, item id, title, genres, value (and why).

    The value is ``row[value_key]`` (default: ``value_name``), headed ``value_name``; no
    value column when ``value_name`` is None. With ``reason_key``, a last column "why" lists
    ``row[reason_key]`` (a list of reasons).
    """
    value_key = value_name if value_key is None else value_key
    table = Table(title=title, title_justify="left", title_style="bold")
    table.add_column("#", justify="right", style="dim")
    table.add_column("item id", justify="right")
    if with_titles:
        table.add_column("title", overflow="fold")
        table.add_column("genres", style="dim", overflow="fold")
    if value_name is not None:
        table.add_column(value_name, justify="right")
    if reason_key is not None:
        table.add_column("why", overflow="fold")
    for row in rows:
        cells = [str(row.get("rank", "")), str(row["item_id"])]
        if with_titles:
            cells += [row.get("title") or "", ", ".join(row.get("genres") or [])]
        if value_name is not None:
            value = row.get(value_key) if value_key is not None else None
            cells.append("" if value is None else value_format.format(value))
        if reason_key is not None:
            cells.append("; ".join(row.get(reason_key) or []))
        table.add_row(*cells)
    return table


__all__ = ["items_table"]
