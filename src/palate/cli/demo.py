"""``palate demo``: a short tour of collaborative filtering on MovieLens (or synthetic data)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.table import Table

from palate import DatasetNotFoundError, HybridRecommender, TwoTower, datasets, save
from palate.cli._evaluate import rating_report, report_table
from palate.cli._items import items_table
from palate.cli._session import JsonOption, Session, VerboseOption, session
from palate.cli.recommend import explain_rows
from palate.cli.train import describe_model, fit, manifest_metrics
from palate.data.catalog import Catalog, genre_list, plain
from palate.data.split import random_split
from palate.data.synthetic import synthetic_ratings
from palate.datasets import Dataset
from palate.errors import ConfigError

RELEASE = "ml-latest-small"
TEST_FRACTION = 0.1
SEED = 0
K = 10
#: Seconds to wait for the download server before touring synthetic data instead.
DOWNLOAD_TIMEOUT = 15.0
#: Size of the synthetic stand-in (MovieLens-like ratings with planted structure).
SYNTHETIC = {"n_users": 600, "n_items": 1500, "n_ratings": 60_000}
#: Movie 1 of every MovieLens release is Toy Story (1995).
WELL_KNOWN_ITEM = 1
#: The cold-start example's two-tower model: small epoch budget so the demo stays short.
COLD_START_MODEL = {"epochs": 4, "early_stopping": None, "seed": SEED}


def demo(
    data: Annotated[
        Path | None,
        typer.Option(
            help="MovieLens files to use (a directory or zip, or a ratings file); default: "
            f"{RELEASE} from $PALATE_DATA, the cache, or a download."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Also save the demo model to this directory.")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a model already at --out.")
    ] = False,
    json_output: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Train collaborative filtering on MovieLens and show what it learned.

    Splits the ratings 90/10, trains with the default settings, shows a user's top 10, the
    movies most similar to a well-known one, and the held-out RMSE against mean-only
    baselines. Without MovieLens (and no network) it tours synthetic ratings instead.
    """
    with session(json_output, verbose) as s:
        started = time.perf_counter()
        dataset, fallback_reason = _load(s, data)
        ratings = dataset.ratings
        if ratings.kind != "explicit":
            raise ConfigError(
                f"the demo needs explicit ratings, and {dataset.name} holds binary events; "
                "use `palate train --kind binary` for those"
            )
        s.say(
            f"Data   {dataset.name}: {len(ratings):,} ratings by {ratings.n_users:,} users of "
            f"{ratings.n_items:,} items"
        )
        train_part, test = random_split(ratings, test_fraction=TEST_FRACTION, seed=SEED)
        s.say(f"Split  {len(train_part):,} train / {len(test):,} held-out ratings (seed {SEED})")
        model = HybridRecommender()
        s.say(f"Model  {describe_model(model)}")
        fit(s, model, train_part, test)

        catalog = Catalog(dataset.items, ratings.items)
        user_id = plain(ratings.users.ids[0])
        favourites = _favourites(train_part, user_id, catalog)
        result = model.recommend([user_id], k=K)
        recommendations = catalog.rows(result.item_ids[0], result.shown[0])
        explain_rows(model, user_id, recommendations, catalog, K, include_seen=False)
        anchor = _anchor_item(dataset, train_part)
        neighbours = model.similar_items([anchor], k=K)
        similar = catalog.rows(neighbours.similar_ids[0], neighbours.distances[0], "distance")
        report = rating_report(model, train_part, test)
        cold_start = _cold_start(s, dataset, train_part, anchor, catalog)
        split = {
            "method": "random_split",
            "validation_fraction": TEST_FRACTION,
            "seed": SEED,
            "n_train": len(train_part),
            "n_validation": len(test),
        }
        saved = None
        if out is not None:
            saved = save(
                model, out, overwrite=overwrite, metrics=manifest_metrics(report, split),
                item_table=dataset.items,
            )
        seconds = time.perf_counter() - started

        s.emit(
            {
                "data": {
                    "name": dataset.name,
                    "source": "synthetic" if fallback_reason else "movielens",
                    "fallback_reason": fallback_reason,
                    "n_ratings": len(ratings),
                    "n_users": ratings.n_users,
                    "n_items": ratings.n_items,
                },
                "split": split,
                "config": model.get_params(),
                "user": {"user_id": user_id, "favourites": favourites},
                "recommendations": recommendations,
                "similar": {"item": catalog.describe(anchor), "items": similar},
                "rmse": {name: values["validation_rmse"] for name, values in report.items()},
                "cold_start": cold_start,
                "model_dir": None if saved is None else str(saved),
                "seconds": seconds,
            }
        )
        if not s.json:
            _show(s, catalog, user_id, favourites, recommendations, anchor, similar, report)
            _show_cold_start(s, cold_start)
            if saved is not None:
                s.say(
                    f"Saved the model to {saved}; try `palate recommend {saved} --user {user_id}`"
                )
            s.say(f"Done in {seconds:.1f} s.")


def _cold_start(
    s: Session, dataset: Dataset, train_part: Any, anchor: Any, catalog: Catalog
) -> dict[str, Any] | None:
    """A movie nobody has rated, described only by genres and a year: which users the
    two-tower model would recommend it to."""
    items = dataset.item_features
    if items is None or "genres" not in items.columns:
        return None
    row = items.rows([anchor]).iloc[0]
    genres = genre_list(row["genres"])
    years = pd.to_numeric(items.frame["year"], errors="coerce") if "year" in items.columns else None
    year = int(years.max()) + 1 if years is not None and years.notna().any() else None
    new_movie = {"genres": genres, "year": year}
    model = TwoTower(**COLD_START_MODEL)  # type: ignore[arg-type]
    s.say(f"Model  {describe_model(model)} for a new movie")
    fit(s, model, train_part, None, user_features=dataset.user_features, item_features=items)
    vector = model.item_vectors(features=new_movie)
    user_ids, predicted = model.top_users(vector, k=K)
    counts = train_part.user_counts()
    rows = []
    for rank, (user, value) in enumerate(zip(user_ids[0], predicted[0], strict=True), start=1):
        index = int(train_part.users.index([user])[0])
        rows.append(
            {"rank": rank, "user_id": plain(user), "predicted_rating": float(value),
             "n_ratings": int(counts[index])}
        )
    return {
        "item": new_movie,
        "like": catalog.describe(anchor),
        "model": describe_model(model),
        "epochs": len(model.history_),
        "users": rows,
    }


def _show_cold_start(s: Session, cold_start: dict[str, Any] | None) -> None:
    if cold_start is None:
        return
    movie = cold_start["item"]
    genres = ", ".join(movie["genres"]) or "no genres"
    year = "" if movie["year"] is None else f", {movie['year']}"
    table = Table(
        title=f"A new movie nobody has rated ({genres}{year}): recommend it to",
        title_justify="left",
    )
    table.add_column("rank", justify="right")
    table.add_column("user")
    table.add_column("predicted rating", justify="right")
    table.add_column("ratings in training", justify="right")
    for row in cold_start["users"]:
        table.add_row(
            str(row["rank"]), str(row["user_id"]), f"{row['predicted_rating']:.2f}",
            f"{row['n_ratings']:,}",
        )
    s.show(table)


def _load(s: Session, data: Path | None) -> tuple[Dataset, str | None]:
    """MovieLens, or a synthetic stand-in (and why) when it is not available."""
    try:
        if data is not None:
            with s.working(f"reading {data}"):
                return datasets.load_interactions(data, download=False), None
        with s.download(RELEASE) as progress, s.working(f"loading {RELEASE}"):
            return datasets.movielens(RELEASE, timeout=DOWNLOAD_TIMEOUT, progress=progress), None
    except DatasetNotFoundError as exc:
        reason = str(exc)
    s.note(f"{RELEASE} is not available ({reason}); touring synthetic ratings instead.")
    synthetic = synthetic_ratings(
        SYNTHETIC["n_users"], SYNTHETIC["n_items"], SYNTHETIC["n_ratings"], seed=SEED
    )
    dataset = Dataset("synthetic", synthetic.ratings, synthetic.items, synthetic.users)
    return dataset, reason


def _favourites(train_part: Any, user_id: Any, catalog: Catalog) -> list[dict[str, Any]]:
    """The user's five best-rated training items."""
    frame = train_part.to_pandas()
    mine = frame[frame["user_id"] == user_id].sort_values("value", ascending=False, kind="stable")
    top = mine.head(5)
    return catalog.rows(top["item_id"].to_numpy(), top["value"].to_numpy(), "rating")


def _anchor_item(dataset: Dataset, train_part: Any) -> Any:
    """Toy Story on MovieLens, else the most-rated training item."""
    counts = train_part.item_counts()
    items = train_part.items
    if dataset.name.startswith("ml-") and WELL_KNOWN_ITEM in items:
        if counts[items.index([WELL_KNOWN_ITEM])[0]] > 0:
            return WELL_KNOWN_ITEM
    return plain(items.ids[int(counts.argmax())])


def _show(
    s: Session,
    catalog: Catalog,
    user_id: Any,
    favourites: list[dict[str, Any]],
    recommendations: list[dict[str, Any]],
    anchor: Any,
    similar: list[dict[str, Any]],
    report: dict[str, Any],
) -> None:
    s.show(
        items_table(
            favourites,
            title=f"User {user_id} rated highest",
            value_name="rating",
            value_format="{:g}",
            with_titles=catalog.has_titles,
        )
    )
    s.show(
        items_table(
            recommendations,
            # ranked by the blend, so the predicted ratings shown are not in order
            title=f"Top {K} for user {user_id} (unseen items; ranked by what they are likely "
            "to watch and like, with their predicted rating)",
            value_name="predicted rating",
            value_key="score",
            value_format="{:.2f}",
            with_titles=catalog.has_titles,
            reason_key="because",
        )
    )
    s.show(
        items_table(
            similar,
            title=f"Most similar to {catalog.label(anchor)} (‖x(k) − x(i)‖² × (1 + n̄/n(k)): "
            "rarely-rated items count as farther)",
            value_name="distance",
            value_format="{:.4f}",
            with_titles=catalog.has_titles,
        )
    )
    table: Table = report_table(
        report, "Held-out RMSE (lower is better)", model_label="collaborative filtering"
    )
    s.show(table)
