"""Request and response bodies of the HTTP API (pydantic, validated on every request)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints, model_validator

#: Longest string id accepted (user or item).
MAX_ID_LENGTH = 256
#: Most users, items or pairs in one request.
MAX_BATCH = 1000
#: Largest k.
MAX_K = 1000

StrId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, strict=True)]
Id = StrictInt | StrId
K = Annotated[int, Field(ge=1, le=MAX_K, strict=True, description="How many items per list.")]
Value = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecommendationsRequest(_Body):
    user_ids: list[Id] = Field(min_length=1, max_length=MAX_BATCH)
    k: K = 10
    exclude_seen: bool = True
    explain: bool = False


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


class SimilarItemsRequest(_Body):
    item_ids: list[Id] = Field(min_length=1, max_length=MAX_BATCH)
    k: K = 10


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


class ItemsResponse(BaseModel):
    query: str
    items: list[Item]


class RatingIn(_Body):
    item_id: Id
    rating: Value | None = None
    value: Value | None = Field(None, description="For binary events: 1 (or 0).")

    @model_validator(mode="after")
    def _one_value(self) -> RatingIn:
        if (self.rating is None) == (self.value is None):
            raise ValueError("give exactly one of 'rating' or 'value'")
        return self

    @property
    def number(self) -> float:
        return float(self.rating if self.rating is not None else self.value)  # type: ignore[arg-type]


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
