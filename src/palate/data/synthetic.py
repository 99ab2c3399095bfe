"""Synthetic ratings with planted low-rank structure, for tests, demos and benchmarks.

:func:`synthetic_ratings` draws users, items and (user, item) events whose values follow a
known model, so that a learner's output can be checked against the truth:

    score(u, i) = global + b_u + b_i + u · v_i
    explicit:  y = clip(round_to_step(score + ε), 1, 5)         ε ~ N(0, noise²)
    binary:    y ~ Bernoulli(g(score + ε))                       g the logistic sigmoid

with user factors ``u`` and item factors ``v`` of length ``embedding_size``. The scales of
the planted parts are fixed so that explicit ratings look like MovieLens (mean ≈ 3.5, standard
deviation ≈ 1 with the default noise) and binary labels are about half positive:

==========  ======  ========  ========  =====================
kind        global  sd(b_u)   sd(b_i)   sd(u · v) (typical)
==========  ======  ========  ========  =====================
explicit    3.5     0.35      0.45      0.7
binary      0.0     0.5       1.0       2.0
==========  ======  ========  ========  =====================

Side information is correlated with the factors, so that content-based models have something
to learn:

- each genre is a random direction in factor space, and an item gets the 1–3 genres (at most
  ``n_genres``) whose directions are closest to its factor vector;
- 30 % of the variance of a user's factors comes from their occupation, gender and age.

Which pairs are observed: item popularity follows a power law — the item of popularity rank
``r`` (ranks assigned at random) has weight ``r^(−popularity_exponent)`` — and user activity is
log-normal. Pairs are drawn without replacement with probability ∝ activity(u) · popularity(i):
exactly (Gumbel top-n over every pair) when the matrix has at most 2^24 cells, otherwise by
drawing int64 keys ``u · n_items + i`` in chunks, de-duplicating with a sort and topping up,
which never builds the dense matrix and handles 10^8 ratings.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from palate.data.interactions import Interactions, Kind
from palate.data.vocabulary import Vocabulary
from palate.errors import ConfigError
from palate.types import IdLike, Seed

logger = logging.getLogger(__name__)

RATING_SCALE = (1.0, 5.0)

#: the 18 genres of MovieLens; more are named "Genre 19", "Genre 20", ...
GENRES = (
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
OCCUPATIONS = (
    "administrator",
    "artist",
    "doctor",
    "educator",
    "engineer",
    "entertainment",
    "executive",
    "healthcare",
    "homemaker",
    "lawyer",
    "librarian",
    "marketing",
    "none",
    "other",
    "programmer",
    "retired",
    "salesman",
    "scientist",
    "student",
    "technician",
    "writer",
)

# (global, sd of user bias, sd of item bias, sd of u · v) per kind; see the module docstring
_SCALES: dict[str, tuple[float, float, float, float]] = {
    "explicit": (3.5, 0.35, 0.45, 0.7),
    "binary": (0.0, 0.5, 1.0, 2.0),
}
_ATTRIBUTE_SHARE = 0.3  # share of user-factor variance explained by user attributes
_EXACT_LIMIT = 2**24  # largest matrix (cells) sampled exactly over every pair
_MAX_INDEX = 2**31 - 1  # Interactions store 32-bit indices; keys u * n_items + i fit int64
_MAX_DENSITY = 0.25  # beyond this, larger matrices would need too many top-up rounds
# Work in pieces small enough that their buffers are reused instead of freshly mapped (and
# page-faulted) on every iteration.
_CHUNK = 2**16  # rows per chunk when computing values
_BLOCK = 2**18  # pairs per block when drawing and sorting keys
_TIME_START = 946_684_800  # 2000-01-01 UTC
_TIME_END = 1_577_836_800  # 2020-01-01 UTC


@dataclass(frozen=True, eq=False)
class SyntheticData:
    """A synthetic data set and the truth that generated it.

    User and item ids are ``0 .. n_users − 1`` and ``0 .. n_items − 1`` and equal their
    indices in ``ratings.users`` / ``ratings.items``, so row ``u`` of ``true_user_factors``
    belongs to user id ``u``. Every user and item is in the vocabularies, including those
    without events.

    Attributes
    ----------
    ratings : Interactions
        The observed events, sorted by (user, item), with timestamps (seconds, 2000–2020).
    items : DataFrame, n_items rows
        ``item_id`` (int), ``title`` ("Item 17"), ``genres`` (list of str), ``year`` (int).
    users : DataFrame, n_users rows
        ``user_id`` (int), ``age`` (int), ``gender`` ("F"/"M"), ``occupation`` (str),
        ``zip`` (5-digit str).
    true_user_factors : ndarray, shape (n_users, embedding_size)
    true_item_factors : ndarray, shape (n_items, embedding_size)
    true_user_bias : ndarray, shape (n_users,)
    true_item_bias : ndarray, shape (n_items,)
    true_global : float
        The planted offset (3.5 explicit, 0.0 binary).
    genre_directions : ndarray, shape (n_genres, embedding_size)
        Unit vectors; genre ``j`` of :data:`genre_names` is drawn towards direction ``j``.
    genre_names : tuple of str, length n_genres
    """

    ratings: Interactions
    items: pd.DataFrame
    users: pd.DataFrame
    true_user_factors: np.ndarray
    true_item_factors: np.ndarray
    true_user_bias: np.ndarray
    true_item_bias: np.ndarray
    true_global: float
    genre_directions: np.ndarray
    genre_names: tuple[str, ...]

    def true_score(self, user_ids: IdLike, item_ids: IdLike) -> np.ndarray:
        """The planted noiseless score of (user, item) pairs, before clipping and rounding.

        ``score(u, i) = global + b_u + b_i + u · v_i`` (for binary data, the logit of
        ``P(y = 1)``).

        Parameters
        ----------
        user_ids, item_ids : array-like of int, shape (n,)

        Returns
        -------
        ndarray of float64, shape (n,)
        """
        users = self.ratings.users.index(user_ids, kind="user")
        items = self.ratings.items.index(item_ids, kind="item")
        if len(users) != len(items):
            raise ConfigError(
                f"true_score scores pairs: got {len(users)} users and {len(items)} items"
            )
        return _scores(
            self.true_global,
            self.true_user_bias,
            self.true_item_bias,
            self.true_user_factors,
            self.true_item_factors,
            users,
            items,
        )


def synthetic_ratings(
    n_users: int,
    n_items: int,
    n_ratings: int,
    embedding_size: int = 8,
    kind: Kind = "explicit",
    noise: float = 0.5,
    popularity_exponent: float = 1.0,
    n_genres: int = 18,
    rating_step: float | None = 0.5,
    seed: Seed = 0,
) -> SyntheticData:
    """Draw a data set with planted low-rank structure (see the module docstring).

    Parameters
    ----------
    n_users, n_items : int >= 1
    n_ratings : int, 1 <= n_ratings <= n_users · n_items
        Number of distinct (user, item) events. Matrices over 2^24 cells may be filled to at
        most a quarter.
    embedding_size : int >= 1
        Rank ``k`` of the planted structure.
    kind : {"explicit", "binary"}
        Ratings on the scale (1, 5), or 0/1 labels drawn with probability ``g(score + ε)``.
    noise : float >= 0
        Standard deviation of ``ε``, added before clipping / the sigmoid.
    popularity_exponent : float in [0, 5]
        Power-law exponent of item popularity; 0 makes every item equally likely, 1 is Zipf.
    n_genres : int >= 1
    rating_step : float or None
        Explicit ratings are rounded to ``1 + step · m`` (0.5: half stars like MovieLens; 1.0:
        whole stars); ``None`` keeps them continuous (only clipped). The step must divide 4.
    seed : int or None

    Returns
    -------
    SyntheticData

    Raises
    ------
    ConfigError
        Any argument out of range, or ``n_ratings > n_users · n_items``.

    Examples
    --------
    >>> data = synthetic_ratings(n_users=100, n_items=50, n_ratings=1000, seed=0)
    >>> len(data.ratings), data.ratings.shape, data.true_item_factors.shape
    (1000, (100, 50), (50, 8))
    >>> data.items.columns.tolist()
    ['item_id', 'title', 'genres', 'year']
    """
    n_users = _positive_int(n_users, "n_users")
    n_items = _positive_int(n_items, "n_items")
    n_ratings = _positive_int(n_ratings, "n_ratings")
    k = _positive_int(embedding_size, "embedding_size")
    n_genres = _positive_int(n_genres, "n_genres")
    if kind not in _SCALES:
        raise ConfigError(f"kind must be 'explicit' or 'binary', got {kind!r}")
    noise = _number(noise, "noise", 0.0, np.inf)
    popularity_exponent = _number(popularity_exponent, "popularity_exponent", 0.0, 5.0)
    step = _rating_step(rating_step)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise ConfigError(f"seed must be an integer or None, got {seed!r}")
    if max(n_users, n_items) > _MAX_INDEX:
        raise ConfigError(
            f"n_users and n_items must each be at most {_MAX_INDEX} (32-bit indices); "
            f"got {n_users} and {n_items}"
        )
    n_cells = n_users * n_items
    if n_ratings > n_cells:
        raise ConfigError(
            f"n_ratings={n_ratings} exceeds the {n_users} x {n_items} = {n_cells} possible "
            "(user, item) pairs; lower n_ratings or raise n_users / n_items"
        )
    if n_cells > _EXACT_LIMIT and n_ratings > _MAX_DENSITY * n_cells:
        raise ConfigError(
            f"n_ratings={n_ratings} would fill more than {_MAX_DENSITY:.0%} of a "
            f"{n_users} x {n_items} matrix; lower n_ratings or raise n_users / n_items"
        )

    rng = np.random.default_rng(seed)
    global_offset, sd_user_bias, sd_item_bias, sd_interaction = _SCALES[kind]
    component_sd = k**-0.25  # so that u · v has unit variance before scaling
    factor_scale = np.sqrt(sd_interaction)

    users, unscaled_user_factors = _users(rng, n_users, k, component_sd)
    user_factors = factor_scale * unscaled_user_factors
    item_factors = factor_scale * rng.normal(0.0, component_sd, size=(n_items, k))
    user_bias = rng.normal(0.0, sd_user_bias, size=n_users)
    item_bias = rng.normal(0.0, sd_item_bias, size=n_items)
    genre_names = tuple(_genre_names(n_genres))
    genre_directions, genre_lists = _genres(rng, item_factors, genre_names)
    items = pd.DataFrame(
        {
            "item_id": np.arange(n_items, dtype=np.int64),
            "title": [f"Item {i}" for i in range(n_items)],
            "genres": genre_lists,
            "year": _years(rng, n_items),
        }
    )

    log_activity = rng.normal(0.0, 1.0, size=n_users)
    ranks = rng.permutation(n_items) + 1.0
    log_popularity = -popularity_exponent * np.log(ranks)
    keys = _sample_pairs(rng, log_activity, log_popularity, n_ratings, n_items)
    span = _TIME_END - _TIME_START
    active_length = np.minimum(rng.lognormal(np.log(180 * 86_400), 1.5, size=n_users), span)
    active_start = _TIME_START + rng.random(n_users) * (span - active_length)

    user_idx = np.empty(n_ratings, dtype=np.int32)
    item_idx = np.empty(n_ratings, dtype=np.int32)
    values = np.empty(n_ratings, dtype=np.float32)
    timestamps = np.empty(n_ratings, dtype=np.int64)
    for start in range(0, n_ratings, _CHUNK):
        part = slice(start, min(start + _CHUNK, n_ratings))
        event_users = keys[part] // n_items  # int64: np.take is slow with int32 indices
        event_items = keys[part] - event_users * n_items
        user_idx[part] = event_users
        item_idx[part] = event_items
        score = _scores(
            global_offset,
            user_bias,
            item_bias,
            user_factors,
            item_factors,
            event_users,
            event_items,
        )
        if noise > 0:
            score += rng.normal(0.0, noise, size=len(score))
        values[part] = _observe(rng, score, kind, step)
        # each user is active over a window of log-normal length inside 2000-2020
        offset = rng.random(len(event_users)) * np.take(active_length, event_users)
        moment = np.take(active_start, event_users) + offset
        timestamps[part] = moment.astype(np.int64)
    del keys

    ratings = Interactions(
        Vocabulary(np.arange(n_users, dtype=np.int64)),
        Vocabulary(np.arange(n_items, dtype=np.int64)),
        user_idx,
        item_idx,
        values,
        timestamps,
        kind=kind,
        rating_scale=RATING_SCALE if kind == "explicit" else None,
    )
    logger.debug(
        "synthetic %s ratings: %d events, %d users, %d items", kind, n_ratings, n_users, n_items
    )
    truth = (user_factors, item_factors, user_bias, item_bias, genre_directions)
    for array in truth:
        array.setflags(write=False)
    return SyntheticData(
        ratings=ratings,
        items=items,
        users=users,
        true_user_factors=user_factors,
        true_item_factors=item_factors,
        true_user_bias=user_bias,
        true_item_bias=item_bias,
        true_global=global_offset,
        genre_directions=genre_directions,
        genre_names=genre_names,
    )


# ---------------------------------------------------------------------------- validation
def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _number(value: object, name: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if not (np.isfinite(number) and low <= number <= high):
        bound = f"between {low:g} and {high:g}" if np.isfinite(high) else f">= {low:g}"
        raise ConfigError(f"{name} must be a finite number {bound}, got {value!r}")
    return number


def _rating_step(value: float | None) -> float | None:
    if value is None:
        return None
    step = _number(value, "rating_step", 0.0, np.inf)
    span = RATING_SCALE[1] - RATING_SCALE[0]
    n_steps = span / step if step > 0 else np.inf
    if not np.isfinite(n_steps) or abs(n_steps - round(n_steps)) > 1e-9:
        raise ConfigError(
            f"rating_step must divide the scale width {span:g} (e.g. 0.5 or 1.0), or be None "
            f"for continuous ratings; got {value!r}"
        )
    return step


# ---------------------------------------------------------------------------- truth and sides
def _users(
    rng: np.random.Generator, n_users: int, k: int, component_sd: float
) -> tuple[pd.DataFrame, np.ndarray]:
    """User attributes, and unscaled factors: part attribute directions, part free noise."""
    age = np.clip(np.rint(rng.normal(32.0, 11.0, size=n_users)), 13, 80).astype(np.int64)
    is_female = rng.random(n_users) < 0.5
    occupation = rng.integers(len(OCCUPATIONS), size=n_users)
    zip_codes = np.char.zfill(rng.integers(0, 100_000, size=n_users).astype(str), 5)
    frame = pd.DataFrame(
        {
            "user_id": np.arange(n_users, dtype=np.int64),
            "age": age,
            "gender": np.array(["M", "F"], dtype=object)[is_female.astype(np.int64)],
            "occupation": np.asarray(OCCUPATIONS, dtype=object)[occupation],
            "zip": zip_codes.astype(object),
        }
    )
    # directions of fixed length, so the attributes' share of the variance does not depend
    # on the luck of a few draws
    directions = rng.normal(size=(len(OCCUPATIONS) + 2, k))
    directions *= np.sqrt(k) * component_sd / np.linalg.norm(directions, axis=1, keepdims=True)
    occupation_directions, gender_direction, age_direction = (
        directions[:-2],
        directions[-2],
        directions[-1],
    )
    gender_sign = np.where(is_female, 1.0, -1.0)
    age_z = (age - 32.0) / 11.0
    from_attributes = (
        occupation_directions[occupation]
        + gender_sign[:, None] * gender_direction
        + age_z[:, None] * age_direction
    ) / np.sqrt(3.0)
    free = rng.normal(0.0, component_sd, size=(n_users, k))
    factors = np.sqrt(_ATTRIBUTE_SHARE) * from_attributes + np.sqrt(1 - _ATTRIBUTE_SHARE) * free
    return frame, factors


def _genre_names(n_genres: int) -> list[str]:
    return list(GENRES[:n_genres]) + [f"Genre {j + 1}" for j in range(len(GENRES), n_genres)]


def _genres(
    rng: np.random.Generator, item_factors: np.ndarray, names: tuple[str, ...]
) -> tuple[np.ndarray, list[list[str]]]:
    """Genre directions, and per item its 1–3 closest genres (in the order of ``names``)."""
    n_items, k = item_factors.shape
    n_genres = len(names)
    directions = rng.normal(size=(n_genres, k))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    norms = np.linalg.norm(item_factors, axis=1, keepdims=True)
    unit = item_factors / np.where(norms > 0, norms, 1.0)
    affinity = unit @ directions.T + rng.normal(0.0, 0.2, size=(n_items, n_genres))
    n_per_item = np.minimum(rng.choice([1, 2, 3], p=[0.45, 0.35, 0.2], size=n_items), n_genres)
    width = min(3, n_genres)
    closest = np.argsort(-affinity, axis=1)[:, :width]
    closest = np.where(np.arange(width) < n_per_item[:, None], closest, n_genres)
    closest.sort(axis=1)
    lists = [[names[g] for g in row if g < n_genres] for row in closest.tolist()]
    return directions, lists


def _years(rng: np.random.Generator, n_items: int) -> np.ndarray:
    """Release years, more recent more likely (1920–2019)."""
    age = np.floor(rng.exponential(15.0, size=n_items)).astype(np.int64)
    return np.maximum(2019 - age, 1920)


def _scores(
    global_offset: float,
    user_bias: np.ndarray,
    item_bias: np.ndarray,
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    users: np.ndarray,
    items: np.ndarray,
) -> np.ndarray:
    # np.take is several times faster than fancy indexing for row gathers
    dot = np.einsum(
        "ij,ij->i", np.take(user_factors, users, axis=0), np.take(item_factors, items, axis=0)
    )
    return global_offset + np.take(user_bias, users) + np.take(item_bias, items) + dot


def _observe(
    rng: np.random.Generator, score: np.ndarray, kind: str, step: float | None
) -> np.ndarray:
    if kind == "binary":
        probability = 1.0 / (1.0 + np.exp(-score))
        return (rng.random(len(score)) < probability).astype(np.float32)
    low, high = RATING_SCALE
    if step is not None:
        score = low + step * np.rint((score - low) / step)
    return np.clip(score, low, high).astype(np.float32)


# ---------------------------------------------------------------------------- pair sampling
def _sample_pairs(
    rng: np.random.Generator,
    log_activity: np.ndarray,
    log_popularity: np.ndarray,
    n_ratings: int,
    n_items: int,
) -> np.ndarray:
    """Sorted unique keys ``u · n_items + i`` of ``n_ratings`` distinct pairs."""
    n_users = len(log_activity)
    if n_users * n_items <= _EXACT_LIMIT:
        # Gumbel top-n (Efraimidis-Spirakis): exactly sequential weighted sampling without
        # replacement, and complete even for a full matrix.
        perturbed = (log_activity[:, None] + log_popularity[None, :]).ravel()
        perturbed += rng.gumbel(size=perturbed.size)
        if n_ratings == perturbed.size:
            return np.arange(n_ratings, dtype=np.int64)
        chosen = np.argpartition(-perturbed, n_ratings - 1)[:n_ratings]
        return np.sort(chosen).astype(np.int64)

    user_p = _normalised(log_activity)
    item_p = _normalised(log_popularity)
    keys = np.empty(0, dtype=np.int64)
    success = 1.0
    for _ in range(64):
        need = n_ratings - len(keys)
        if need <= 0:
            break
        # the first round draws exactly what is needed; top-ups allow for duplicates
        size = (
            need
            if not len(keys)
            else int(min(need / max(success, 0.02) * 1.1 + 1024, 4 * n_ratings))
        )
        fresh = _draw_unique_keys(rng, user_p, item_p, size)
        if len(keys):
            position = np.minimum(np.searchsorted(keys, fresh), len(keys) - 1)
            fresh = fresh[keys[position] != fresh]
        success = len(fresh) / size
        excess = len(fresh) - need
        if excess > 0:  # keep a random subset of this round's new pairs
            fresh = np.delete(fresh, rng.choice(len(fresh), size=excess, replace=False))
        if len(keys):
            keys = np.concatenate((keys, fresh))
            keys.sort(kind="stable")  # two sorted runs: a linear merge
        else:
            keys = fresh
    if len(keys) < n_ratings:
        raise ConfigError(
            f"could not draw {n_ratings} distinct pairs: popularity_exponent is too steep for "
            "so many ratings; lower it or lower n_ratings"
        )
    return keys


def _normalised(log_weights: np.ndarray) -> np.ndarray:
    weights = np.exp(log_weights - log_weights.max())
    return weights / weights.sum()


def _draw_unique_keys(
    rng: np.random.Generator, user_p: np.ndarray, item_p: np.ndarray, size: int
) -> np.ndarray:
    """Sorted distinct keys among ``size`` pairs drawn with replacement, users ∝ user_p and
    items ∝ item_p independently.

    Users are drawn as counts and processed in blocks of consecutive users, so each block's
    keys occupy their own range: sorting blocks of about ``_BLOCK`` keys one at a time (fast,
    in cache) leaves the concatenation sorted.
    """
    n_users, n_items = len(user_p), len(item_p)
    user_counts = rng.multinomial(size, user_p)
    cumulative = np.cumsum(user_counts)
    bounds = np.unique(np.searchsorted(cumulative, np.arange(_BLOCK, size, _BLOCK)) + 1)
    blocks = []
    for first, last in zip(np.r_[0, bounds], np.r_[bounds, n_users], strict=True):
        counts = user_counts[first:last]
        m = int(counts.sum())
        if m == 0:
            continue
        users = np.repeat(np.arange(first, last, dtype=np.int64), counts)
        items = np.repeat(np.arange(n_items, dtype=np.int64), rng.multinomial(m, item_p))
        rng.shuffle(items)
        block = users * n_items + items
        block.sort()
        blocks.append(block[np.concatenate(([True], block[1:] != block[:-1]))])
    return np.concatenate(blocks) if blocks else np.empty(0, dtype=np.int64)


__all__ = ["GENRES", "OCCUPATIONS", "SyntheticData", "synthetic_ratings"]
