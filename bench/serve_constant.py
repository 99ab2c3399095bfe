"""The reference server for serve_load.py: the same stack (FastAPI, uvicorn, the same request
validation) answering every request with a constant document."""

from __future__ import annotations

import orjson
from fastapi import FastAPI, Response

from palate.service import schemas

_RECOMMENDATIONS = orjson.dumps(
    {
        "model_generation": 0,
        "k": 10,
        "results": [
            {
                "user_id": 1,
                "fallback": False,
                "provenance": "model",
                "note": None,
                "live_ratings": 0,
                "items": [
                    {
                        "rank": r,
                        "item_id": r,
                        "title": f"Item {r}",
                        "genres": ["Drama"],
                        "score": 4.5,
                    }
                    for r in range(1, 11)
                ],
            }
        ],
    }
)
_RATINGS = orjson.dumps({"user_id": "u", "stored": [], "folded_in": True, "live_ratings": 1})

app = FastAPI()


@app.post("/v1/recommendations")
async def recommendations(body: schemas.RecommendationsRequest) -> Response:
    return Response(_RECOMMENDATIONS, media_type="application/json")


@app.post("/v1/users/{user_id}/ratings")
def ratings(user_id: str, body: schemas.RatingsRequest) -> Response:
    return Response(_RATINGS, media_type="application/json")


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
