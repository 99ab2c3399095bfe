"""Explanations that name real terms of a model's score.

A model that can explain (``can_explain``) writes the score of each listed item ``i`` for one
user as a sum of terms::

    score(u, i) = baseline(i) + Σ_{j ∈ history(u)} contribution(j, i) + unexplained(i)

``contribution(j, i)`` is what the user's event on item ``j`` adds to the score of ``i``;
``baseline(i)`` is the part nobody's history changes (an item's bias and mean rating, its
popularity); ``unexplained(i)`` is whatever the model's score holds beyond the decomposition
(0 for EASE; for a known user of collaborative filtering the difference between the stored
user vector and its re-solve from the user's ratings, and the clipping to the rating scale).
Each model derives its terms in its own ``attribute`` hook; :func:`explanations` turns them
into :class:`Explanation` records with the few reasons worth naming: a history item only where
its contribution is large, "popular" only where the baseline dominates the personal part.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from palate.types import Id

ReasonKind = Literal["history", "popular", "source"]

#: A history item is named only when its contribution is at least this share of the sum of
#: the absolute contributions of the user's whole history to the item's score ...
MIN_SHARE = 0.05
#: ... and at least this share of the item's personal part (the sum of every contribution)
MIN_SHARE_OF_PERSONAL = 0.1
#: ... and at least this share of how far the score is from an average item's (``reference``)
MIN_SHARE_OF_SCORE = 0.05


@dataclass(frozen=True)
class Attribution:
    """A model's score of some items for one user, split into terms (what the hook returns).

    Attributes
    ----------
    score : ndarray, shape (n_listed,)
        The model's score being explained (``predict`` before clipping for rating models, the
        ranking score for blends, ``x B`` for EASE).
    baseline : ndarray, shape (n_listed,)
        The part no history item contributes.
    reference : float
        What the baseline is compared with: the baseline of an average item (the global mean
        rating for collaborative filtering, 0 where there is no baseline).
    contributions : ndarray, shape (n_listed, n_history)
        ``contribution(j, i)`` of each history item (columns in the order of ``history``).
    history : ndarray of int64, shape (n_history,)
        Item rows of the user's history.
    values : ndarray, shape (n_history,)
        The user's value (rating, engagement) of each history item.
    removal : ndarray, shape (n_listed, n_history), optional
        How much the score drops when the history item is removed from the user's history
        and the user re-solved; None: the same as ``contributions`` (EASE, where removing
        x_j removes exactly B(j, i)).
    """

    score: np.ndarray
    baseline: np.ndarray
    reference: float
    contributions: np.ndarray
    history: np.ndarray
    values: np.ndarray
    removal: np.ndarray | None = None


@dataclass(frozen=True)
class Reason:
    """One named term of an item's score.

    Attributes
    ----------
    kind : {"history", "popular", "source"}
        ``history``: the user's event on ``item_id`` adds ``contribution``; ``popular``: the
        item's baseline (liked or engaged with by most people) is ``contribution`` above an
        average item's; ``source``: a candidate source of a retrieve-then-rank pipeline found
        the item (``source`` names it, ``item_id`` is the user's item it started from, if
        any; ``contribution`` is 0: finding is not scoring).
    contribution : float
        In the units of :attr:`Explanation.score`.
    item_id : id or None
        The history item (``history`` reasons).
    value : float or None
        The user's rating (or engagement) of that item.
    removal : float or None
        How much the score drops when that item is removed from the history (``history``
        reasons; see :class:`Attribution`).
    source : str or None
        The candidate source (``source`` reasons).
    """

    kind: ReasonKind
    contribution: float
    item_id: Id | None = None
    value: float | None = None
    removal: float | None = None
    source: str | None = None


@dataclass(frozen=True)
class Explanation:
    """Why one item scored as it did for one user.

    ``score = baseline + personal + unexplained`` with ``personal`` the sum of the
    contributions of the user's whole history; ``reasons`` are the terms worth naming, largest
    first (possibly none: then the score comes from many small contributions).
    """

    item_id: Id
    score: float
    baseline: float
    reference: float
    personal: float
    unexplained: float
    reasons: tuple[Reason, ...]
    #: the largest positive history terms, named or not (what "from your ratings overall"
    #: is mostly made of when no single rating is large)
    largest: tuple[Reason, ...] = ()

    def phrases(
        self, label: Callable[[Any], str] = str, ratings: bool = True, overall: bool = True
    ) -> list[str]:
        """One phrase per reason: ``label(item_id)`` names items (e.g. titles); ``ratings``
        False speaks of engagements instead of ratings; ``overall`` adds, when no single
        history item is named, how much the history adds together and its largest terms."""
        parts = []
        for reason in self.reasons:
            if reason.kind == "popular":
                what = "rated highly by most people" if ratings else "popular with everyone"
                parts.append(f"{what} ({reason.contribution:+.2f})")
            elif reason.kind == "source":
                start = "" if reason.item_id is None else f" from {label(reason.item_id)}"
                parts.append(f"found by {reason.source}{start}")
            elif ratings:
                rated = "" if reason.value is None else f" {reason.value:g}"
                parts.append(
                    f"because you rated {label(reason.item_id)}{rated} "
                    f"({reason.contribution:+.2f})"
                )
            else:
                parts.append(f"because of {label(reason.item_id)} ({reason.contribution:+.2f})")
        if overall and self.largest and not any(r.kind == "history" for r in self.reasons):
            most = ", ".join(f"{label(r.item_id)} ({r.contribution:+.2f})" for r in self.largest)
            what = "your ratings" if ratings else "your items"
            parts.append(f"from many of {what} together ({self.personal:+.2f}), most from {most}")
        return parts

    def describe(self, label: Callable[[Any], str] = str, ratings: bool = True) -> str:
        """The reasons as one line (see :meth:`phrases`)."""
        return "; ".join(self.phrases(label, ratings)) or "from your ratings overall"


def explanations(
    attribution: Attribution,
    item_ids: Sequence[Id],
    history_ids: Sequence[Id],
    top: int = 3,
) -> list[Explanation]:
    """:class:`Explanation` per listed item from a model's :class:`Attribution`.

    A history item ``j`` is named for item ``i`` when its contribution is positive, among the
    ``top`` largest, at least :data:`MIN_SHARE` of ``Σ_j |contribution(j, i)|`` and at least
    :data:`MIN_SHARE_OF_PERSONAL` of the personal part and :data:`MIN_SHARE_OF_SCORE` of
    ``|score − reference|``, the personal part is positive (no
    "because" for an item the history pushes down overall), and removing the item drops the
    score by at least half its contribution (where removal is not the same as the
    contribution, as in collaborative filtering, a rating whose removal would hardly move the
    score is not given as the reason). The baseline is named ("popular")
    when ``baseline − reference`` is positive and at least the personal part.
    """
    contributions = np.asarray(attribution.contributions, dtype=np.float64)
    removal = contributions if attribution.removal is None else np.asarray(
        attribution.removal, dtype=np.float64)
    n_listed = len(item_ids)
    personal = contributions.sum(axis=1) if contributions.size else np.zeros(n_listed)
    total_abs = np.abs(contributions).sum(axis=1) if contributions.size else np.zeros(n_listed)
    out = []
    for r in range(n_listed):
        reasons: list[Reason] = []
        largest: list[Reason] = []
        above = float(attribution.baseline[r] - attribution.reference)
        if above > 0 and above >= personal[r]:
            reasons.append(Reason("popular", above))
        if contributions.shape[1] and personal[r] > 0:
            row = contributions[r]
            order = np.argsort(-row, kind="stable")[:top]
            distance = abs(float(attribution.score[r]) - attribution.reference)
            floor = max(MIN_SHARE * total_abs[r], MIN_SHARE_OF_PERSONAL * personal[r],
                        MIN_SHARE_OF_SCORE * distance, 1e-9)
            for j in order:
                if row[j] <= 0:
                    break
                reason = Reason(
                    "history", float(row[j]), history_ids[j], float(attribution.values[j]),
                    float(removal[r, j]),
                )
                largest.append(reason)
                if row[j] >= floor and removal[r, j] >= 0.5 * row[j]:
                    reasons.append(reason)
        score = float(attribution.score[r])
        baseline = float(attribution.baseline[r])
        out.append(
            Explanation(
                item_ids[r],
                score,
                baseline,
                float(attribution.reference),
                float(personal[r]),
                score - baseline - float(personal[r]),
                tuple(reasons[: top + 1]),
                tuple(largest),
            )
        )
    return out


__all__ = ["Attribution", "Explanation", "Reason", "explanations"]
