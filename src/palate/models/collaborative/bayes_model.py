""":class:`BayesianCollaborativeFiltering`: collaborative filtering with ``solver="bayes"`` and
the settings chosen on validation splits carved from training ratings — palate's most
accurate rating predictor (MovieLens 100K and 1M; see BENCHMARKS.md, P1)."""

from __future__ import annotations

from typing import Any

from palate.errors import ConfigError
from palate.models.collaborative.model import CollaborativeFiltering

#: the settings that differ from :class:`CollaborativeFiltering`'s, chosen on validation
#: splits of MovieLens 100K and 1M training ratings (BENCHMARKS.md, P1)
BAYES_DEFAULTS: dict[str, Any] = {
    "solver": "bayes",
    "embedding_size": 10,
    "samples": 200,
}


class BayesianCollaborativeFiltering(CollaborativeFiltering):
    """Fully Bayesian collaborative filtering of explicit ratings (Gibbs sampling).

    Prediction for user j on item i, averaged over ``samples`` posterior draws::

        μ + b(j) + c(i) + (w(j) + |N(j)|^-1/2 Σ_{k∈N(j)} y(k))
                        · (x(i) + |N(i)|^-1/2 Σ_{l∈N(i)} z(l))

    with N(j) the items user j rated and N(i) the users who rated item i in the training
    data (SVD++-style implicit terms on both sides), Gaussian priors whose means and
    precisions are sampled, and a noise precision per user and per item (``noise_dof``).
    The model and its sampler are in :mod:`palate.models.collaborative.bayes`; this class is
    :class:`CollaborativeFiltering` with ``solver="bayes"``, ``embedding_size=10`` and
    ``samples=200`` by default, and takes the same keyword arguments (the ALS and Adam ones
    do not apply). It predicts, ranks, folds in new users, explains and saves like
    :class:`CollaborativeFiltering`.

    Examples
    --------
    >>> from palate.data.synthetic import synthetic_ratings  # doctest: +SKIP
    >>> data = synthetic_ratings(200, 100, 5000).ratings      # doctest: +SKIP
    >>> model = BayesianCollaborativeFiltering(samples=50).fit(data)  # doctest: +SKIP
    >>> model.predict(data.users.ids[:2], data.items.ids[:2]).shape   # doctest: +SKIP
    (2,)
    """

    model_kind = "bayes"

    def __init__(self, **params: Any) -> None:
        merged = {**BAYES_DEFAULTS, **params}
        if merged["solver"] != "bayes":
            raise ConfigError(
                f"BayesianCollaborativeFiltering samples its posterior (solver='bayes'); for "
                f"solver={merged['solver']!r} use CollaborativeFiltering"
            )
        super().__init__(**merged)


__all__ = ["BAYES_DEFAULTS", "BayesianCollaborativeFiltering"]
