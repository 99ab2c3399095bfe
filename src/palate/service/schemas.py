"""Request and response bodies of the HTTP API (pydantic, validated on every request).

Types are strict: ``k`` is a JSON integer (not ``10.0`` or ``"10"``), flags are JSON
booleans (not ``"yes"`` or ``1``), ids are JSON integers within int64 or strings of 1 to
256 characters.

Ids: a model trained on integer ids knows user 7 as ``7`` or ``"7"``; only that canonical
decimal form names the integer, so ``"007"``, ``"+7"`` and ``"-0"`` are other users (unknown
to the model, with live ratings of their own).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Path
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from palate.ranking.filters import ItemFilter, ItemPolicy

#: Longest string id accepted (user or item).
MAX_ID_LENGTH = 256
#: Most users, items or pairs in one request.
MAX_BATCH = 1000
#: Largest k.
MAX_K = 1000
#: Most users in one recommendation request with ``explain: true``.
MAX_EXPLAIN_USERS = 10
#: Most similar items in one request: ``len(item_ids) * k``.
MAX_SIMILAR_RESULTS = 10_000
#: Integer ids are int64: from -2**63 up to, not including, 2**63 (a bound the schema states
#: exactly: 2**63 - 1 would read as the float 2**63).
INT64_MIN, INT64_END = -(2**63), 2**63

#: Text without control characters (C0, DEL, C1).
PRINTABLE = r"^[^\x00-\x1f\x7f-\x9f]*$"

StrId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, strict=True)]
UserIdPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_ID_LENGTH,
        description="The user's id; for a model of integer ids, only the canonical decimal "
        "form (7, not 007) names an integer id.",
    ),
]
IntId = Annotated[int, Field(strict=True, ge=INT64_MIN, lt=INT64_END)]
Id = IntId | StrId
K = Annotated[int, Field(ge=1, le=MAX_K, strict=True, description="How many items per list.")]
Value = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


#: Most policies in one request; most values in one ``in`` / ``not in`` policy.
MAX_POLICIES = 20
MAX_POLICY_VALUES = 100
#: Largest support floor a request may ask for.
MAX_MIN_RATINGS = 10**9

PolicyScalar = Annotated[bool, Field(strict=True)] | IntId | Value | Annotated[
    str, StringConstraints(max_length=MAX_ID_LENGTH, pattern=PRINTABLE, strict=True)
]


class PolicyIn(_Body):
    """Keep only items whose attribute ``column`` satisfies ``op value`` (missing values fail)."""

    column: Annotated[
        str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    ] = Field(description="A column of the model's item table, e.g. year or genres.")
    op: Literal[
        "==", "!=", "<", "<=", ">", ">=", "in", "not in", "contains", "not contains"
    ] = Field(description="contains / not contains test one value of a multi-valued column "
              "(genres).")
    value: PolicyScalar | Annotated[list[PolicyScalar], Field(max_length=MAX_POLICY_VALUES)] = (
        Field(description="A list for in / not in.")
    )


class _Filtered(_Body):
    """Filters a request adds to the operator's (``GET /v1/model`` lists those)."""

    min_ratings: int = Field(
        0,
        ge=0,
        le=MAX_MIN_RATINGS,
        strict=True,
        description="Leave out items with fewer training events (the curriculum's lab keeps "
        "films with more than 20 ratings: 21).",
    )
    policies: list[PolicyIn] = Field(
        default_factory=list,
        max_length=MAX_POLICIES,
        description="Every policy must pass; columns are those of the model's item table.",
    )

    def item_filter(self) -> ItemFilter | None:
        """The request's own filter, or None when it sets none."""
        if not self.min_ratings and not self.policies:
            return None
        return ItemFilter(
            self.min_ratings,
            tuple(ItemPolicy(p.column, p.op, p.value) for p in self.policies),
        )


class RecommendationsRequest(_Filtered):
    user_ids: list[Id] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description=f"At most {MAX_EXPLAIN_USERS} when explain is true.",
    )
    k: K = 10
    exclude_seen: bool = True
    explain: bool = Field(
        False,
        description="Explain the first 20 items of each list by a similar item the user "
        f"liked (at most {MAX_EXPLAIN_USERS} users per request).",
    )

    @model_validator(mode="after")
    def _explain_few(self) -> RecommendationsRequest:
        if self.explain and len(self.user_ids) > MAX_EXPLAIN_USERS:
            raise ValueError(
                f"explain=true takes at most {MAX_EXPLAIN_USERS} user ids per request, got "
                f"{len(self.user_ids)}; split the request or leave explain off"
            )
        return self


class Item(BaseModel):
    item_id: Any
    title: str | None = None
    genres: list[str] | None = None


class RankedItem(Item):
    rank: int
    score: float
    explanation: str | None = None
    because_of: dict[str, Any] | None = None


class UserRecommendations(BaseModel):
    user_id: Any
    fallback: bool = Field(description="True when the user is unknown and a fallback answered.")
    provenance: str = Field(description="model, fold_in (live ratings folded in) or fallback")
    note: str | None = None
    live_ratings: int = 0
    items: list[RankedItem]


class RecommendationsResponse(BaseModel):
    model_generation: int
    k: int
    results: list[UserRecommendations]


class SimilarItemsRequest(_Filtered):
    item_ids: list[Id] = Field(
        min_length=1,
        max_length=MAX_BATCH,
        description=f"len(item_ids) * k is at most {MAX_SIMILAR_RESULTS}.",
    )
    k: K = 10

    @model_validator(mode="after")
    def _bounded(self) -> SimilarItemsRequest:
        if len(self.item_ids) * self.k > MAX_SIMILAR_RESULTS:
            raise ValueError(
                f"len(item_ids) * k is at most {MAX_SIMILAR_RESULTS} per request, got "
                f"{len(self.item_ids)} * {self.k}; ask for fewer items or a smaller k"
            )
        return self


class SimilarItem(Item):
    rank: int
    distance: float


class SimilarItemsResult(BaseModel):
    item: Item
    similar: list[SimilarItem]


class SimilarItemsResponse(BaseModel):
    results: list[SimilarItemsResult]


class Pair(_Body):
    user_id: Id
    item_id: Id


class ScoresRequest(_Body):
    pairs: list[Pair] = Field(min_length=1, max_length=MAX_BATCH)


class Score(BaseModel):
    user_id: Any
    item_id: Any
    score: float | None
    provenance: str


class ScoresResponse(BaseModel):
    scores: list[Score]


class HealthResponse(BaseModel):
    status: str = Field(description="ok, or degraded when ratings cannot be stored now")
    reason: str | None = Field(None, description="Why the service is degraded.")
    model_kind: str
    generation: int
    pid: int


class RatedItem(Item):
    value: float


class UserRatingsResponse(BaseModel):
    user_id: Any
    ratings: list[RatedItem]


class ItemsResponse(BaseModel):
    query: str
    items: list[Item]


def _no_default(schema: dict[str, Any]) -> None:
    """Leave the absent value out of the schema: a field is given as a number or not at all."""
    schema.pop("default", None)


class RatingIn(_Body):
    """One rating: ``rating`` (on the model's scale) or ``value`` (an event), exactly one."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"oneOf": [{"required": ["rating"]}, {"required": ["value"]}]},
    )

    item_id: Id
    rating: Value = Field(  # type: ignore[assignment]
        None, description="On the model's rating scale.", json_schema_extra=_no_default
    )
    value: Value = Field(  # type: ignore[assignment]
        None, description="For binary events: 1 (or 0).", json_schema_extra=_no_default
    )

    @model_validator(mode="after")
    def _one_value(self) -> RatingIn:
        if (self.rating is None) == (self.value is None):
            raise ValueError("give exactly one of 'rating' or 'value'")
        return self

    @property
    def number(self) -> float:
        return float(self.rating if self.rating is not None else self.value)


class RatingsRequest(_Body):
    ratings: list[RatingIn] = Field(min_length=1, max_length=MAX_BATCH)


class StoredRatingOut(BaseModel):
    seq: int
    item_id: Any
    value: float
    created_at: float


class RatingsResponse(BaseModel):
    user_id: Any
    stored: list[StoredRatingOut]
    folded_in: bool
    live_ratings: int
    note: str | None = None


class ReloadRequest(_Body):
    model_dir: Annotated[str, StringConstraints(min_length=1, max_length=4096)] | None = None


class ReloadResponse(BaseModel):
    reloaded: bool
    model: dict[str, Any]


class ErrorResponse(BaseModel):
    error: str
    message: str
    details: list[dict[str, Any]] | None = None
