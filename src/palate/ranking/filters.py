"""Business filters on candidates: block lists and policy predicates on item attributes."""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from palate.data.catalog import genre_lists
from palate.data.vocabulary import Vocabulary
from palate.errors import ConfigError, DataError
from palate.types import Id

_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
OPERATORS = (*_COMPARISONS, "in", "not in", "contains", "not contains")


@dataclass(frozen=True)
class ItemPolicy:
    """Keep only the items whose attribute satisfies ``column op value``.

    Examples: ``ItemPolicy("unsafe", "!=", True)`` ("no items flagged unsafe"),
    ``ItemPolicy("year", ">=", 1990)``, ``ItemPolicy("genres", "not contains", "Horror")``.
    Items without a row in the item table, or with a missing value in ``column`` (None, NaN,
    ``pd.NA``), are removed: a policy that cannot be checked does not pass, whatever the
    operator (``!=`` and ``not in`` included).

    Parameters
    ----------
    column : str
        An item attribute (a column of the item table).
    op : {"==", "!=", "<", "<=", ">", ">=", "in", "not in", "contains", "not contains"}
        ``contains`` tests membership in a multi-valued attribute (lists or ``"A|B"``).
    value : Any
        A list for ``in`` / ``not in``.
    """

    column: str
    op: str
    value: Any

    def __post_init__(self) -> None:
        if not isinstance(self.column, str) or not self.column:
            raise ConfigError(f"a policy needs a column name, got {self.column!r}")
        if self.op not in OPERATORS:
            raise ConfigError(f"policy operator {self.op!r} is not one of {', '.join(OPERATORS)}")
        if self.op in ("in", "not in") and not isinstance(self.value, (list, tuple)):
            raise ConfigError(f"policy {self.column} {self.op} needs a list value")

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | ItemPolicy) -> ItemPolicy:
        """From ``{"column": ..., "op": ..., "value": ...}`` (a TOML table)."""
        if isinstance(config, ItemPolicy):
            return config
        if not isinstance(config, Mapping) or set(config) != {"column", "op", "value"}:
            raise ConfigError(
                f"a policy is a table with exactly column, op and value, got {config!r}"
            )
        return cls(str(config["column"]), str(config["op"]), config["value"])

    def to_config(self) -> dict[str, Any]:
        value = list(self.value) if isinstance(self.value, tuple) else self.value
        return {"column": self.column, "op": self.op, "value": value}

    def allows(self, values: pd.Series) -> np.ndarray:
        """Whether each value passes, shape (len(values),) of bool.

        A missing value (None, NaN, ``pd.NA`` of a nullable column) fails every operator,
        ``!=`` and ``not in`` included: an item whose attribute is unknown is filtered out.

        Examples
        --------
        >>> years = pd.Series([1999, None, 1950], dtype="Int64")
        >>> ItemPolicy("year", ">=", 1970).allows(years).tolist()
        [True, False, False]
        """
        values = pd.Series(values).reset_index(drop=True)
        present = values.notna().to_numpy(dtype=bool)
        passed = np.zeros(len(values), dtype=bool)
        known = values[present]
        if not len(known):
            return passed
        try:
            if self.op in ("contains", "not contains"):
                hit = np.array([self.value in row for row in genre_lists(known)], dtype=bool)
                ok = hit if self.op == "contains" else ~hit
            elif self.op in ("in", "not in"):
                hit = known.isin(list(self.value)).to_numpy(dtype=bool)
                ok = hit if self.op == "in" else ~hit
            else:
                compared = _COMPARISONS[self.op](known, self.value)
                ok = pd.Series(compared).fillna(False).to_numpy(dtype=bool)
        except (TypeError, ValueError, NotImplementedError) as exc:
            raise DataError(
                f"policy {self.column} {self.op} {self.value!r} cannot compare the column's "
                f"{values.dtype} values with a {type(self.value).__name__}; give a value of "
                "the column's type (in TOML, a number without quotes for a numeric column)"
            ) from exc
        passed[present] = ok
        return passed


def allowed_items(
    items: Vocabulary,
    item_table: pd.DataFrame | None,
    block_items: Sequence[Id] = (),
    policies: Sequence[ItemPolicy] = (),
) -> np.ndarray:
    """Which items may be shown, shape (n_items,) of bool.

    Blocked ids that are not in the vocabulary are ignored (they cannot be recommended).
    """
    allowed = np.ones(len(items), dtype=bool)
    if len(block_items):
        rows = items.index(list(block_items), missing="ignore")
        allowed[rows[rows >= 0]] = False
    if policies:
        if item_table is None or "item_id" not in item_table.columns:
            raise DataError(
                "policies read item attributes: pass item_table= with an item_id column"
            )
        rows = items.index(item_table["item_id"].to_numpy(), missing="ignore")
        known = rows >= 0
        passes = np.zeros(len(items), dtype=bool)
        ok = np.ones(int(known.sum()), dtype=bool)
        for policy in policies:
            if policy.column not in item_table.columns:
                raise DataError(
                    f"policy column {policy.column!r} is not in the item table (columns: "
                    f"{list(item_table.columns)})"
                )
            ok &= policy.allows(item_table[policy.column][known].reset_index(drop=True))
        passes[rows[known]] = ok
        allowed &= passes
    return allowed


__all__ = ["OPERATORS", "ItemPolicy", "allowed_items"]
