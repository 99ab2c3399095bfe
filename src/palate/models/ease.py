"""EASE: a closed-form item-to-item model for implicit feedback (Steck, 2019).

Each item's score for a user is a weighted sum of the items the user engaged with; the weight
matrix B (items × items) is the ridge regression of every item's column on all the others, with
its diagonal held at zero so an item cannot explain itself::

    B = argmin ‖X − X B‖²_F + λ ‖B‖²_F   subject to   diag(B) = 0

with X the binary users × items matrix. The Lagrangian gives the closed form

    P = (XᵀX + λI)⁻¹,     B(i, j) = −P(i, j) / P(j, j)  (i ≠ j),     B(j, j) = 0

so a fit is one Gram matrix and one Cholesky inverse of an items × items matrix: it suits
catalogues of up to a few tens of thousands of items (memory n_items² · 8 bytes while fitting,
n_items² · 4 bytes stored). Scores of user u: ``x(u) B`` — a new user's scores come straight
from their first events, with no solve at all.

Two extensions, both measured on validation splits carved from the training data of MovieLens
100K and 1M (``bench/tune_defaults.py``):

- **dropout** (EDLAE, Steck 2020, "Autoencoders that don't overfit towards the identity"): the
  closed form of training B to reconstruct X from a copy of X whose entries are dropped with
  probability p (and the rest scaled by 1/(1 − p)). In expectation that adds the penalty
  ``Σ_j (p / (1 − p)) G(j, j) ‖B(j, :)‖²`` — an item engaged with often gets a larger
  penalty — so λI becomes the diagonal ``Λ = λI + (p / (1 − p)) diag(G)``::

      P = (G + Λ)⁻¹,     B(i, j) = −P(i, j) / P(j, j)  (i ≠ j),     B(j, j) = 0

  (the zero-diagonal variant; p = 0 is EASE).
- **item_exponent** γ: the model is fitted on ``X̃ = X D^(−γ)`` (D the diagonal of the items'
  engagement counts, so each column of X is divided by n(i)^γ), with λ scaled by
  ``mean(diag(X̃ᵀX̃)) / mean(diag(XᵀX))``, and scores are ``x̃(u) B̃``. The weights kept are
  ``B = D^(−γ) B̃`` so that scores stay ``x(u) B`` for a 0/1 history x(u). γ > 0 lets the
  many co-occurrences of the most popular items weigh less in the regressions and in the
  scores.

Use it for positive-only data on a moderate catalogue; :class:`~palate.ImplicitALS` scales to
larger catalogues and gives item vectors for vector indexes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from palate.data.interactions import Interactions
from palate.errors import ConfigError
from palate.models.base import (
    FeedbackKind,
    Model,
    ModelState,
    check_array_shapes,
    engagement_input,
    is_number,
)
from palate.models.explain import Attribution
from palate.models.popularity import popularity_scores
from palate.types import IdArray

logger = logging.getLogger(__name__)

#: defaults of ``dropout`` and ``item_exponent``: chosen on validation splits carved from the
#: training data of MovieLens 100K and 1M (``bench/tune_defaults.py --model ease``)
DEFAULT_DROPOUT = 0.25
DEFAULT_ITEM_EXPONENT = 0.2


@dataclass(frozen=True)
class EASEConfig:
    """Hyperparameters of :class:`EASE` (validated on construction)."""

    reg: float | None = None
    max_items: int = 30_000
    dropout: float = DEFAULT_DROPOUT
    item_exponent: float = DEFAULT_ITEM_EXPONENT

    def reg_for(self, n_events: int) -> float:
        """λ for a training set of ``n_events`` engaged pairs: ``reg`` if given, else
        ``300 · (n_events / 50,000)^(1/2)`` clipped to [100, 1000] for plain EASE
        (``dropout = item_exponent = 0``) and twice that with either extension."""
        if self.reg is not None:
            return float(self.reg)
        plain = float(np.clip(300.0 * np.sqrt(n_events / 50_000), 100.0, 1000.0))
        return plain if self.dropout == 0 and self.item_exponent == 0 else 2.0 * plain

    def __post_init__(self) -> None:
        reg = self.reg
        if reg is not None and (
            not isinstance(reg, (int, float, np.number))
            or isinstance(reg, bool)
            or not np.isfinite(reg)
            or reg <= 0
        ):
            raise ConfigError(f"reg must be a finite number > 0, got {reg!r}")
        p = self.dropout
        if not is_number(p) or not 0 <= p < 1:
            raise ConfigError(f"dropout must be a number in [0, 1) (0: plain EASE), got {p!r}")
        g = self.item_exponent
        if not is_number(g) or not 0 <= g <= 1:
            raise ConfigError(
                f"item_exponent must be a number in [0, 1] (0: plain EASE), got {g!r}"
            )
        m = self.max_items
        if not isinstance(m, (int, np.integer)) or isinstance(m, bool) or m < 1:
            raise ConfigError(f"max_items must be a positive integer, got {m!r}")


class EASE(Model):
    """Embarrassingly shallow autoencoder: item-to-item weights in closed form.

    Parameters
    ----------
    reg : float, optional
        λ added to the diagonal of XᵀX (scaled as described above when ``item_exponent`` > 0).
        Default: ``600 · (n / 50,000)^(1/2)`` for ``n`` engaged training pairs, clipped to
        [200, 2000] (the value used is ``reg_``). With the default ``dropout`` and
        ``item_exponent`` the best λ on validation splits carved from the training data was
        600 on MovieLens 100K (36,000 pairs; the rule gives 510) and 1,600 on 1M (370,000
        pairs; the rule gives 1,640) (``bench/tune_topn.py``). Plain EASE
        (``dropout=0, item_exponent=0``) keeps its own best rule, half of that:
        ``300 · (n / 50,000)^(1/2)`` clipped to [100, 1000] (``bench/tune_defaults.py``).
    dropout : float
        p in [0, 1): EDLAE's dropout penalty ``p / (1 − p) · XᵀX(j, j)`` on row j of B;
        0 is plain EASE. Default 0.25 (validation, as ``reg``).
    item_exponent : float
        γ in [0, 1]: fit on X with each item's column divided by its count to the γ; 0 is
        plain EASE. Default 0.2 (validation, as ``reg``).
    max_items : int
        Largest catalogue ``fit`` accepts (the weights are a dense items × items matrix);
        raise it knowingly, or use :class:`~palate.ImplicitALS` for large catalogues.

    Attributes
    ----------
    weights_ : ndarray of float32, shape (n_items, n_items)
        B, with a zero diagonal.
    reg_ : float
        The λ used.

    Examples
    --------
    >>> model = EASE().fit(clicks)                 # doctest: +SKIP
    >>> model.recommend([1, 2], k=10).item_ids.shape      # doctest: +SKIP
    (2, 10)
    """

    model_kind = "ease"
    similarity_metric = "cosine"
    can_fold_in = True
    can_explain = True

    weights_: np.ndarray
    reg_: float
    engaged_: sp.csr_matrix

    def __init__(
        self,
        reg: float | None = None,
        max_items: int = 30_000,
        dropout: float = DEFAULT_DROPOUT,
        item_exponent: float = DEFAULT_ITEM_EXPONENT,
    ) -> None:
        self.config = EASEConfig(
            reg=reg, max_items=max_items, dropout=dropout, item_exponent=item_exponent
        )

    # ------------------------------------------------------------------ training
    def fit(self, interactions: Interactions) -> EASE:
        """Solve B from engagement events. Returns self.

        An event with value > 0 counts as engaged (a row of X); every event, engaged or not
        (e.g. a rating below the threshold kept as a 0), counts as seen.
        """
        data = engagement_input(interactions)
        if data.n_items > self.config.max_items:
            raise ConfigError(
                f"EASE keeps a dense {data.n_items:,} × {data.n_items:,} weight matrix; that is "
                f"above max_items={self.config.max_items:,}. Use ImplicitALS for a catalogue "
                "this large, or pass a larger max_items if the memory "
                f"({8 * data.n_items**2 / 2**30:.1f} GiB while fitting) is available"
            )
        self._forget_fit()
        fallback, _ = popularity_scores(data, "count")
        self._set_events(data, fallback)
        self.engaged_ = engaged_matrix(data)
        self.reg_ = self.config.reg_for(self.engaged_.nnz)
        self.weights_ = ease_weights(
            self.engaged_, self.reg_, self.config.dropout, self.config.item_exponent
        )
        return self

    @property
    def feedback_kind(self) -> FeedbackKind:
        return "implicit"

    # ------------------------------------------------------------------ scoring
    def score_rows(self, rows: np.ndarray) -> np.ndarray:
        """``x(u) B`` for the users at ``rows`` (x their engaged items)."""
        return np.asarray(self.engaged_[rows] @ self.weights_, dtype=np.float32)

    def predict_rows(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        """Scores x(u)·B(:, i) of pairs (not probabilities); 0 for an unknown user, NaN for
        an unknown item."""
        out = np.full(len(u), np.nan, dtype=np.float64)
        out[i >= 0] = 0.0
        both = np.flatnonzero((i >= 0) & (u >= 0))
        if len(both):
            rows = self.engaged_[u[both]]
            # Σ over the user's items j of B(j, i), for every pair at once without densifying
            pair = np.repeat(np.arange(len(both)), np.diff(rows.indptr))
            weights = self.weights_[rows.indices, i[both][pair]]
            out[both] = np.bincount(pair, weights=weights, minlength=len(both))
        return out

    def fold_in_scores(self, item_ids: IdArray, values: np.ndarray) -> np.ndarray:
        """``x B`` for a new user whose engaged items (value > 0) are ``item_ids``."""
        idx = self.items_.index(item_ids, kind="item")
        engaged = idx[np.asarray(values, dtype=np.float64) > 0]
        return self.weights_[np.unique(engaged)].sum(axis=0).astype(np.float64)

    def explain_history(self, row: int) -> tuple[np.ndarray, np.ndarray]:
        """The user's engaged items (the rows of X that ``x(u) B`` sums), value 1."""
        engaged = self.engaged_
        items = engaged.indices[engaged.indptr[row] : engaged.indptr[row + 1]].astype(np.int64)
        return items, np.ones(len(items))

    def attribute(
        self, history: np.ndarray, values: np.ndarray, items: np.ndarray, user_row: int
    ) -> Attribution:
        """``score(u, i) = Σ_j x_j B(j, i)`` exactly: the contribution of history item j is
        ``B(j, i)`` where the user engaged with j (value > 0), else 0; no baseline."""
        history = np.asarray(history, dtype=np.int64)
        engaged = (np.asarray(values, dtype=np.float64) > 0).astype(np.float64)
        _, first = np.unique(history, return_index=True)  # an item counts once, as in x(u)
        once = np.zeros(len(history))
        once[first] = 1.0
        contributions = self.weights_[history][:, items].T.astype(np.float64) * (engaged * once)
        return Attribution(
            score=contributions.sum(axis=1),
            baseline=np.zeros(len(items)),
            reference=0.0,
            contributions=contributions,
            history=history,
            values=np.asarray(values, dtype=np.float64),
        )

    def similarity_vectors(self) -> np.ndarray:
        """The rows of B (each item's weights on every other item)."""
        return self.weights_

    # ------------------------------------------------------------------ model files
    def _save_state(self, state: ModelState) -> None:
        state.arrays["weights"] = self.weights_
        if self.engaged_.nnz != self.seen_.nnz:  # some seen events are not engagements
            state.arrays["engaged_indptr"] = self.engaged_.indptr.astype(np.int64)
            state.arrays["engaged_indices"] = self.engaged_.indices.astype(np.int32)
        state.extra["reg"] = self.reg_

    def _load_state(self, state: ModelState) -> None:
        a = state.arrays
        n_users, n_items = len(self.users_), len(self.items_)
        check_array_shapes(a, {"weights": (n_items, n_items)})
        self.weights_ = np.array(a["weights"], dtype=np.float32)
        if "engaged_indptr" in a:
            check_array_shapes(a, {"engaged_indptr": (n_users + 1,)})
            indices = a["engaged_indices"]
            self.engaged_ = sp.csr_matrix(
                (np.ones(len(indices), dtype=np.float32), indices, a["engaged_indptr"]),
                shape=(n_users, n_items),
            )
        else:
            self.engaged_ = self.seen_
        self.reg_ = float(state.extra.get("reg", self.config.reg_for(self.engaged_.nnz)))


def engaged_matrix(data: Interactions) -> sp.csr_matrix:
    """Users × items 0/1 matrix of the engaged events (value > 0), indices sorted."""
    keep = data.values > 0
    engaged = sp.csr_matrix(
        (np.ones(int(keep.sum()), dtype=np.float32), (data.user_idx[keep], data.item_idx[keep])),
        shape=data.shape,
    )
    engaged.sort_indices()
    return engaged


def ease_weights(
    X: sp.spmatrix | np.ndarray,
    reg: float,
    dropout: float = 0.0,
    item_exponent: float = 0.0,
) -> np.ndarray:
    """B = −P / diag(P) with P = (G + Λ)⁻¹ and a zero diagonal.

    G = X̃ᵀX̃ with X̃ = X D^(−γ) (γ = ``item_exponent``; D the items' engagement counts) and
    ``Λ = λ s I + (p / (1 − p)) diag(G)`` (p = ``dropout``; s = mean(diag(G)) / mean(counts)
    keeps λ on the scale of the unscaled Gram). The rows of the result are multiplied by
    n(i)^(−γ), so that ``x B`` is the score of a 0/1 history x. With p = γ = 0 this is EASE.

    Parameters
    ----------
    X : sparse or dense matrix, shape (n_users, n_items)
        Engagement indicators (any non-zero counts as 1).
    reg : float
        λ > 0.
    dropout : float
        p in [0, 1).
    item_exponent : float
        γ >= 0.

    Returns
    -------
    ndarray of float32, shape (n_items, n_items)
    """
    X = sp.csr_matrix(X, dtype=np.float64, copy=True)
    X.data[:] = 1.0
    G = (X.T @ X).toarray()
    counts = np.diag(G).copy()
    scale = np.ones(len(G))
    if item_exponent:
        scale = np.maximum(counts, 1.0) ** -item_exponent
        G *= scale[:, None]
        G *= scale[None, :]
    diagonal = np.diag(G).copy()
    lam = reg * (diagonal.mean() / max(counts.mean(), 1e-300) if len(G) else 1.0)
    G[np.diag_indices_from(G)] += lam + dropout / (1.0 - dropout) * diagonal
    # P = (G + Λ)⁻¹ through Cholesky (symmetric positive definite for λ > 0)
    c, lower = scipy.linalg.cho_factor(G, overwrite_a=True, check_finite=False)
    P = scipy.linalg.cho_solve((c, lower), np.eye(len(G)), overwrite_b=True, check_finite=False)
    B = P / -np.diag(P)[None, :]
    B[np.diag_indices_from(B)] = 0.0
    B *= scale[:, None]
    return np.ascontiguousarray(B, dtype=np.float32)


__all__ = ["EASE", "EASEConfig", "ease_weights"]
