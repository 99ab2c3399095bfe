"""Business filters on candidates: block lists and policy predicates on item attributes."""

from __future__ import annotations

import dataclasses
import math
import operator
import os
import re
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from palate.data.catalog import genre_lists
from palate.data.vocabulary import Vocabulary
from palate.errors import ConfigError, DataError
from palate.models.scoring import Recommendations, SimilarItems
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




# ---------------------------------------------------------------------- policies as text
#: ``column op value``; the word operators need spaces around them.
_POLICY_TEXT = re.compile(
    r"^\s*(?P<column>[A-Za-z_][A-Za-z0-9_]*)\s*"
    r"(?:(?P<symbol>==|!=|<=|>=|=|<|>)|\s(?P<word>not\s+contains|contains|not\s+in|in)\s)"
    r"\s*(?P<value>.*?)\s*$"
)


def _policy_value(text: str) -> Any:
    """A number, a boolean or text (quotes optional) from the value part of a policy."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            number = kind(text)
        except ValueError:
            continue
        if isinstance(number, float) and not math.isfinite(number):
            break
        return number
    return text


def is_multi_valued(values: pd.Series) -> bool:
    """Whether a column holds several values per item (lists, or text like ``"A|B"``)."""
    known = values.dropna()
    return bool(
        len(known)
        and known.map(lambda v: isinstance(v, (list, tuple, np.ndarray)) or "|" in str(v)).any()
    )


def parse_policy(text: str, item_table: pd.DataFrame | None = None) -> ItemPolicy:
    """An :class:`ItemPolicy` from ``"column op value"``, as written on the command line.

    Operators: ``== (or =) != < <= > >=`` and the words ``in``, ``not in``, ``contains``,
    ``not contains``; ``in`` takes comma-separated values. Values are numbers, ``true`` /
    ``false`` or text (quotes optional). Given the item table, the column must be one of its
    columns, and on a multi-valued column such as MovieLens ``genres`` (``"Action|Comedy"``)
    ``==`` means *contains* and ``!=`` means *does not contain*: ``genres!=Horror`` keeps the
    films that are not horror films.

    Examples
    --------
    >>> parse_policy("year>=1970")
    ItemPolicy(column='year', op='>=', value=1970)
    >>> parse_policy("genres not contains Horror")
    ItemPolicy(column='genres', op='not contains', value='Horror')
    """
    found = _POLICY_TEXT.match(text)
    if found is None or not found["value"]:
        raise ConfigError(
            f"cannot read the policy {text!r}: write COLUMN OP VALUE, e.g. 'year>=1970', "
            "'genres!=Horror' or 'genres not contains Horror' (operators: == != < <= > >=, "
            "in, not in, contains, not contains)"
        )
    column = found["column"]
    op = found["symbol"] or " ".join(found["word"].split())
    op = "==" if op == "=" else op
    raw = found["value"]
    value: Any = (
        [_policy_value(part.strip()) for part in raw.split(",") if part.strip()]
        if op in ("in", "not in")
        else _policy_value(raw)
    )
    if item_table is not None:
        if column not in item_table.columns:
            raise ConfigError(
                f"policy {text!r}: the item table has no column {column!r}; its columns are "
                f"{', '.join(map(str, item_table.columns))}"
            )
        values = item_table[column]
        if op in ("==", "!=") and is_multi_valued(values):
            op = "contains" if op == "==" else "not contains"
        given = value if isinstance(value, list) else [value]
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        if numeric and any(isinstance(v, str) for v in given):
            raise ConfigError(
                f"cannot read the policy {text!r}: {column} holds numbers, so the value must be "
                f"a number, e.g. '{column}>=1970' (write COLUMN OP VALUE)"
            )
    return ItemPolicy(column, op, value)


# ---------------------------------------------------------------------- filters people set
def training_events(model: Any) -> np.ndarray:
    """Training events per item of a fitted model, shape (n_items,), in ``model.items_``
    order: the number of users with an event for the item (``model.seen_``)."""
    return np.asarray(model.seen_.getnnz(axis=0), dtype=np.int64)


@dataclass(frozen=True)
class ItemFilter:
    """What may be shown: a support floor and policies on item attributes.

    Parameters
    ----------
    min_ratings : int
        Items with fewer training events than this are never recommended or returned as
        similar: an item rated by two people has a mean (and a learned vector) that says
        little. The curriculum's lab keeps the films with more than 20 ratings
        (``min_ratings=21``).
    policies : sequence of ItemPolicy (or ``{"column", "op", "value"}`` tables)
        Every policy must pass (see :class:`ItemPolicy`); they read the item table.
    """

    min_ratings: int = 0
    policies: tuple[ItemPolicy, ...] = ()

    def __post_init__(self) -> None:
        if (
            not isinstance(self.min_ratings, (int, np.integer))
            or isinstance(self.min_ratings, bool)
            or self.min_ratings < 0
        ):
            raise ConfigError(f"min_ratings must be a whole number >= 0, got {self.min_ratings!r}")
        object.__setattr__(self, "min_ratings", int(self.min_ratings))
        policies = [ItemPolicy.from_config(p) for p in self.policies]
        # list values as tuples: a filter is hashable (a cache key)
        object.__setattr__(
            self,
            "policies",
            tuple(
                dataclasses.replace(p, value=tuple(p.value))
                if isinstance(p.value, (list, tuple))
                else p
                for p in policies
            ),
        )

    def __bool__(self) -> bool:
        return self.min_ratings > 0 or bool(self.policies)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ItemFilter:
        """From ``{"min_ratings": 21, "policies": [{"column", "op", "value"}, ...]}`` (TOML)."""
        if not isinstance(config, Mapping) or not set(config) <= {"min_ratings", "policies"}:
            extra = sorted(set(config) - {"min_ratings", "policies"}) if isinstance(
                config, Mapping) else config
            raise ConfigError(
                f"a filter takes only min_ratings and [[policies]] tables, got {extra!r}"
            )
        policies = config.get("policies", ())
        if not isinstance(policies, (list, tuple)):
            raise ConfigError("policies is a list of tables: write [[policies]] per policy")
        return cls(config.get("min_ratings", 0), tuple(policies))

    def to_config(self) -> dict[str, Any]:
        return {"min_ratings": self.min_ratings, "policies": [p.to_config() for p in self.policies]}

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> ItemFilter:
        """From a TOML file: ``min_ratings = 21`` and ``[[policies]]`` tables of column, op
        and value (what ``palate serve --policy-file`` reads)."""
        try:
            with open(path, "rb") as handle:
                config = tomllib.load(handle)
        except FileNotFoundError:
            raise ConfigError(f"no such policy file: {path}") from None
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read the policy file {path}: {exc}") from exc
        try:
            return cls.from_config(config)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc

    def tightened(self, other: ItemFilter) -> ItemFilter:
        """Both filters at once: the larger floor and every policy of either (an operator's
        filter tightened by a request's, never loosened)."""
        extra = tuple(p for p in other.policies if p not in self.policies)
        return ItemFilter(max(self.min_ratings, other.min_ratings), self.policies + extra)

    def allowed(self, model: Any, item_table: pd.DataFrame | None) -> np.ndarray:
        """Which of ``model.items_`` pass, shape (n_items,) of bool."""
        allowed = allowed_items(model.items_, item_table, policies=self.policies)
        if self.min_ratings:
            allowed &= training_events(model) >= self.min_ratings
        return allowed


def filtered_columns(
    item_ids: np.ndarray, listed: np.ndarray, passes: Callable[[np.ndarray], np.ndarray], k: int
) -> np.ndarray:
    """Per row, the first ``k`` columns whose item is listed and passes, shape (n, k), -1
    where fewer remain."""
    n = item_ids.shape[0]
    ok = listed.copy()
    flat = ok.reshape(-1)
    flat[flat] = passes(item_ids.reshape(-1)[flat])
    out = np.full((n, k), -1, dtype=np.int64)
    for row in range(n):
        cols = np.flatnonzero(ok[row])[:k]
        out[row, : len(cols)] = cols
    return out


def over_fetch(
    fetch: Callable[[int], Any],
    rows: Callable[[Any], tuple[np.ndarray, np.ndarray]],
    passes: Callable[[np.ndarray], np.ndarray],
    k: int,
    n_items: int,
    n_blocked: int,
) -> tuple[Any, np.ndarray]:
    """Ask for more than ``k`` items until ``k`` pass in every row or none are left.

    ``fetch(m)`` answers a top-``m`` query; ``rows(answer)`` gives its item ids and which
    entries are listed (not padding), both of shape (n, m); ``passes(ids)`` whether each item
    may be shown. Starts at about ``k`` over the share of items that pass and doubles; at
    ``k + n_blocked`` a row holds ``k`` items that pass unless the catalogue ran out, so that is
    the last query. Returns the last answer and :func:`filtered_columns` of it.
    """
    limit = max(k, min(n_items, k + n_blocked))
    share = max(n_items - n_blocked, 1) / max(n_items, 1)
    m = min(limit, max(2 * k, math.ceil(1.5 * k / share) + 10))
    while True:
        answer = fetch(m)
        ids, listed = rows(answer)
        columns = filtered_columns(ids, listed, passes, k)
        full = (columns[:, -1] >= 0) | ~listed.all(axis=1)
        if m >= limit or full.all():
            return answer, columns
        m = min(limit, 2 * m)


def _take(values: np.ndarray, columns: np.ndarray, pad: Any) -> np.ndarray:
    out = np.take_along_axis(values, np.maximum(columns, 0), axis=1).copy()
    out[columns < 0] = pad
    return out


def _id_pad(ids: np.ndarray) -> Any:
    return -1 if ids.dtype.kind in "iu" else None


class FilteredModel:
    """A fitted model whose lists leave out what an :class:`ItemFilter` does not allow.

    ``recommend``, ``recommend_for_ratings`` and ``similar_items`` ask the model for more
    items than ``k`` and keep the first ``k`` that pass (:func:`over_fetch`), so the lists
    are the model's own top-k among the allowed items, with the model's shapes (rows padded
    where fewer items are allowed). Everything else is the model's (``model.predict``, ...).

    Parameters
    ----------
    model : fitted Model (or RetrieveThenRank)
    item_table : DataFrame with an ``item_id`` column, optional
        The item attributes the policies read (the table saved with the model).
    min_ratings : int
        Leave out items with fewer training events (the curriculum's lab keeps films with
        more than 20 ratings: ``min_ratings=21``).
    policies : sequence of ItemPolicy or ``"column op value"`` strings or tables

    Examples
    --------
    >>> from palate import CollaborativeFiltering
    >>> from palate.data.synthetic import synthetic_ratings
    >>> data = synthetic_ratings(30, 20, 300, seed=0).ratings
    >>> model = CollaborativeFiltering(embedding_size=2, epochs=5, seed=0).fit(data)
    >>> supported = FilteredModel(model, min_ratings=10)
    >>> result = supported.recommend([0], k=3)
    >>> result.item_ids.shape, bool(supported.passes(result.item_ids[0]).all())
    ((1, 3), True)
    """

    def __init__(
        self,
        model: Any,
        item_table: pd.DataFrame | None = None,
        *,
        min_ratings: int = 0,
        policies: Sequence[ItemPolicy | Mapping[str, Any] | str] = (),
        item_filter: ItemFilter | None = None,
    ) -> None:
        parsed = tuple(
            parse_policy(p, item_table) if isinstance(p, str) else ItemPolicy.from_config(p)
            for p in policies
        )
        own = ItemFilter(min_ratings, parsed)
        self.model = model
        self.item_table = item_table
        self.item_filter = own if item_filter is None else item_filter.tightened(own)
        self.allowed_ = self.item_filter.allowed(model, item_table)

    def __getattr__(self, name: str) -> Any:
        if name == "model":  # not set yet (during unpickling / copying)
            raise AttributeError(name)
        return getattr(self.model, name)

    def passes(self, item_ids: np.ndarray) -> np.ndarray:
        """Whether each item id may be shown, shape (n,) of bool (unknown ids do not)."""
        rows = self.model.items_.index(np.asarray(item_ids), missing="ignore")
        return np.where(rows >= 0, self.allowed_[np.maximum(rows, 0)], False)

    @property
    def n_blocked(self) -> int:
        return int(len(self.allowed_) - self.allowed_.sum())

    def _over_fetch(
        self, fetch: Callable[[int], Any], rows: Callable[[Any], tuple[np.ndarray, np.ndarray]],
        k: int,
    ) -> tuple[Any, np.ndarray]:
        from palate.models.scoring import check_k

        return over_fetch(
            fetch, rows, self.passes, check_k(k), len(self.allowed_), self.n_blocked
        )

    def recommend(
        self, user_ids: Any, k: int = 10, exclude_seen: bool = True, **kwargs: Any
    ) -> Recommendations:
        """The model's ``recommend`` restricted to allowed items; same shapes, (n, k)."""
        return self.recommend_with(
            lambda m: self.model.recommend(user_ids, k=m, exclude_seen=exclude_seen, **kwargs), k
        )

    def recommend_with(
        self, fetch: Callable[[int], Recommendations], k: int
    ) -> Recommendations:
        """:meth:`recommend` over another top-``m`` query of the same model (``fetch(m)``, e.g.
        one answered from a vector index): its first ``k`` allowed items per row."""
        answer, cols = self._over_fetch(
            fetch, lambda r: (r.item_ids, np.isfinite(r.scores)), k
        )
        return dataclasses.replace(
            answer,
            item_ids=_take(answer.item_ids, cols, _id_pad(answer.item_ids)),
            scores=_take(answer.scores, cols, np.nan),
            predictions=None
            if answer.predictions is None
            else _take(answer.predictions, cols, np.nan),
        )

    def recommend_for_ratings(
        self, ratings: Any, k: int = 10, exclude_seen: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """The model's ``recommend_for_ratings`` (fold-in) restricted to allowed items."""
        answer, cols = self._over_fetch(
            lambda m: self.model.recommend_for_ratings(ratings, k=m, exclude_seen=exclude_seen),
            lambda r: (r[0][None, :], np.isfinite(r[1])[None, :]),
            k,
        )
        ids, scores = answer
        return (
            _take(ids[None, :], cols, _id_pad(ids))[0],
            _take(scores[None, :], cols, np.nan)[0],
        )

    def similar_items(self, item_ids: Any, k: int = 10, metric: Any = None) -> SimilarItems:
        """The model's ``similar_items`` restricted to allowed items; same shapes, (n, k)."""
        answer, cols = self._over_fetch(
            lambda m: self.model.similar_items(item_ids, k=m, metric=metric),
            lambda r: (r.similar_ids, np.isfinite(r.distances)),
            k,
        )
        return dataclasses.replace(
            answer,
            similar_ids=_take(answer.similar_ids, cols, _id_pad(answer.similar_ids)),
            distances=_take(answer.distances, cols, np.nan),
        )


__all__ = [
    "OPERATORS",
    "FilteredModel",
    "ItemFilter",
    "ItemPolicy",
    "allowed_items",
    "over_fetch",
    "parse_policy",
    "training_events",
]
