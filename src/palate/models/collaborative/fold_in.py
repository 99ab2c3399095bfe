"""Users solved with the items fixed: fold-in of a new user, and ``partial_fit`` of users only.

With every x(i), c(i) and μ(i) fixed, a user's parameters are the curriculum's "per-item
features known" regression, the same solve as an ALS user step::

    [w, b] = argmin 1/2 Σ_i (w·x(i) + b + c(i) + μ(i) − y(i))²  +  s/2 (λ ‖w‖² + λ_b b²)

over the items i the user rated (s the user's λ scale), in closed form for explicit ratings.
For binary labels the squared error is the logistic loss and Newton steps are taken until
they no longer move (25 steps).
"""

from __future__ import annotations

import numpy as np

from palate.errors import DataError
from palate.models.collaborative.cost import Regularisation
from palate.models.collaborative.entries import Entries
from palate.models.collaborative.parameters import Parameters
from palate.models.ridge import SparseRows, solve_rows

#: Newton steps of the logistic fold-in (from w = 0, b = 0 they converge well within it)
NEWTON_STEPS = 25


def solve_users(
    rows: SparseRows,
    values: np.ndarray,
    W: np.ndarray,
    b: np.ndarray,
    params: Parameters,
    regularisation: Regularisation,
    logistic: bool,
    dtype: type,
) -> np.ndarray:
    """θ_j = [w(j), b(j)] of every row of ``rows`` (a user; columns are items) with the items
    of ``params`` fixed, starting from ``W`` and ``b``.

    Parameters
    ----------
    rows : SparseRows, n_rows users
    values : ndarray, shape (nnz,)
        y of each entry, in the order of ``rows``.
    W : ndarray, shape (n_rows, n)
    b : ndarray, shape (n_rows,)

    Returns
    -------
    ndarray, shape (n_rows, n + 1)
        ``[w(j), b(j)]`` per row.
    """
    design = np.hstack([params.X, np.ones((len(params.X), 1), dtype)])
    offsets = (params.mu + params.c)[rows.indices]
    theta: np.ndarray = np.hstack([W, b[:, None]]).astype(dtype)
    reg = regularisation.diagonal(params.width, True, dtype)
    for _ in range(NEWTON_STEPS if logistic else 1):
        solve_rows(
            rows,
            design,
            values,
            offsets,
            reg,
            theta,
            count_scaled=regularisation.count_scaled,
            count_floor=regularisation.count_floors[0],
            logistic=logistic,
        )
    return theta


def refit_users(
    params: Parameters,
    entries: Entries,
    regularisation: Regularisation,
    logistic: bool,
    dtype: type,
) -> None:
    """Solve (w, b) of every user with an entry, items fixed; ``params.W`` and ``params.b``
    are replaced, users without entries keep theirs."""
    u, i, y = entries
    n_users, n_items = len(params.W), len(params.X)
    by_user = SparseRows.from_pairs(u, i, n_users, n_items)
    W, b = params.W.copy(), params.b.copy()
    theta = solve_users(by_user, y[by_user.perm], W, b, params, regularisation, logistic, dtype)
    active = by_user.counts > 0
    d = params.width
    W[active], b[active] = theta[active, :d], theta[active, d]
    params.W, params.b = W, b


def fold_in_user(
    params: Parameters,
    item_rows: np.ndarray,
    values: np.ndarray,
    regularisation: Regularisation,
    logistic: bool,
    dtype: type,
) -> tuple[np.ndarray, float]:
    """(w, b) of a new user who gave ``values`` to the items at ``item_rows`` (distinct),
    solved from w = 0, b = 0; no ratings give w = 0, b = 0.

    Returns
    -------
    w : ndarray of float32, shape (n,)
    b : float
    """
    d = params.width
    if len(item_rows) == 0:
        return np.zeros(d, dtype=np.float32), 0.0
    rows = SparseRows(
        np.array([0, len(item_rows)], dtype=np.int64),
        item_rows.astype(np.int64),
        np.arange(len(item_rows), dtype=np.int64),
        len(params.X),
    )
    W: np.ndarray = np.zeros((1, d), dtype)
    b: np.ndarray = np.zeros(1, dtype)
    theta = solve_users(rows, values, W, b, params, regularisation, logistic, dtype)
    return theta[0, :d].astype(np.float32), float(theta[0, d])


def check_new_ratings(
    item_rows: np.ndarray,
    values: np.ndarray,
    kind: str,
    rating_scale: tuple[float, float] | None,
) -> None:
    """DataError unless each item is rated once and every value fits the model: 0 or 1 for
    binary labels, inside the training scale for explicit ratings."""
    if len(np.unique(item_rows)) != len(item_rows):
        raise DataError("an item is rated twice; keep one rating per item")
    if kind == "binary" and not np.all(np.isin(values, (0, 1))):
        raise DataError("binary models take values 0 or 1")
    if kind == "explicit" and rating_scale is not None:
        low, high = rating_scale
        if np.any((values < low) | (values > high)):
            raise DataError(f"ratings must lie in the model's scale {rating_scale}")


__all__ = ["NEWTON_STEPS", "check_new_ratings", "fold_in_user", "refit_users", "solve_users"]
