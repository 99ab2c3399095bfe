"""The learned arrays of collaborative filtering, in one record the solvers update.

The model predicts, for user j and item i::

    explicit:  w(j)·x(i) + b(j) + c(i) + μ(i)
    binary:    g(w(j)·x(i) + b(j) + c(i) + μ(i))

:class:`Parameters` holds the rows x(i) (matrix X), w(j) (matrix W), the biases b and c and the
item means μ. The solvers replace its arrays (never change them in place), so a cache keyed on
the arrays' identity sees every update.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from palate.data.interactions import Interactions
from palate.errors import DataError
from palate.models.base import check_array_shapes

#: copies of (X, W, b, c) taken during training (early stopping, posterior draws)
Snapshot = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass
class Parameters:
    """X, W, b, c and μ of a collaborative-filtering model.

    Attributes
    ----------
    X : ndarray, shape (n_items, n)
        Item features x(i), one row per item.
    W : ndarray, shape (n_users, n)
        User parameters w(j), one row per user.
    b : ndarray, shape (n_users,)
        User biases b(j).
    c : ndarray, shape (n_items,)
        Item biases c(i) (zeros when the model learns none).
    mu : ndarray, shape (n_items,)
        Item means μ(i), fixed while training (zeros without mean normalisation).
    """

    X: np.ndarray
    W: np.ndarray
    b: np.ndarray
    c: np.ndarray
    mu: np.ndarray

    @classmethod
    def initial(
        cls,
        data: Interactions,
        embedding_size: int,
        init_scale: float,
        item_means: np.ndarray,
        dtype: type,
        rng: np.random.Generator,
    ) -> Parameters:
        """Where training starts: x(i), w(j) ~ N(0, init_scale²) (X drawn first), zero for the
        rows with no events (an unseen user is then predicted μ(i) + c(i)), b = c = 0."""
        d = embedding_size
        X: np.ndarray = (rng.standard_normal((data.n_items, d)) * init_scale).astype(dtype)
        W: np.ndarray = (rng.standard_normal((data.n_users, d)) * init_scale).astype(dtype)
        X[data.item_counts() == 0] = 0
        W[data.user_counts() == 0] = 0
        return cls(
            X,
            W,
            np.zeros(data.n_users, dtype=dtype),
            np.zeros(data.n_items, dtype=dtype),
            np.asarray(item_means, dtype=dtype),
        )

    @property
    def width(self) -> int:
        """n, the number of columns of X and W."""
        return int(self.X.shape[1])

    def add_rows(
        self, n_users: int, item_features: np.ndarray, item_means: np.ndarray, dtype: type
    ) -> None:
        """Append ``n_users`` new users (w = 0, b = 0) and one new item per row of
        ``item_features`` (c = 0, μ from ``item_means``)."""
        if n_users:
            self.W = np.concatenate([self.W, np.zeros((n_users, self.width), dtype)])
            self.b = np.concatenate([self.b, np.zeros(n_users, dtype)])
        n_items = len(item_features)
        if n_items:
            self.X = np.concatenate([self.X, item_features.astype(dtype)])
            self.c = np.concatenate([self.c, np.zeros(n_items, dtype)])
            self.mu = np.concatenate([self.mu, item_means.astype(dtype)])

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The arrays under the names a model file stores them by."""
        return {
            "item_factors": self.X,
            "user_factors": self.W,
            "user_bias": self.b,
            "item_bias": self.c,
            "item_means": self.mu,
        }

    @classmethod
    def from_arrays(
        cls,
        arrays: Mapping[str, np.ndarray],
        n_users: int,
        n_items: int,
        embedding_size: int,
        draws: bool,
        dtype: type,
    ) -> Parameters:
        """Rebuild the record from :meth:`to_arrays`'s arrays, checking every shape
        (DataError). X and W have ``embedding_size`` columns, or a multiple of it when they
        concatenate posterior ``draws``."""
        width = arrays["item_factors"].shape[1] if "item_factors" in arrays else -1
        d = embedding_size
        if width % d or (not draws and width != d):
            raise DataError(
                f"item factors have {width} columns; expected embedding_size {d} "
                "(or a multiple of it for solver='gibbs')"
            )
        check_array_shapes(
            arrays,
            {
                "item_factors": (n_items, width),
                "user_factors": (n_users, width),
                "user_bias": (n_users,),
                "item_bias": (n_items,),
                "item_means": (n_items,),
            },
        )
        return cls(
            X=np.array(arrays["item_factors"], dtype=dtype),
            W=np.array(arrays["user_factors"], dtype=dtype),
            b=np.array(arrays["user_bias"], dtype=dtype),
            c=np.array(arrays["item_bias"], dtype=dtype),
            mu=np.array(arrays["item_means"], dtype=dtype),
        )

    def snapshot(self) -> Snapshot:
        """Copies of the trained arrays (X, W, b, c)."""
        return self.X.copy(), self.W.copy(), self.b.copy(), self.c.copy()

    def restore(self, snapshot: Snapshot) -> None:
        """Put back the arrays of a :meth:`snapshot`."""
        self.X, self.W, self.b, self.c = snapshot


__all__ = ["Parameters", "Snapshot"]
