"""``palate data download`` and ``palate data info``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
from rich.table import Table

from palate import datasets
from palate.cli._items import items_table
from palate.cli._session import JsonOption, Session, VerboseOption, session
from palate.data.catalog import Catalog, genre_lists, plain
from palate.datasets import Dataset

app = typer.Typer(
    help="Download and inspect data sets.", no_args_is_help=True, rich_markup_mode="markdown"
)

TOP_GENRES = 10
TOP_ITEMS = 10


@app.command("download")
def download(
    name: Annotated[
        str, typer.Argument(help="A MovieLens release, e.g. ml-latest-small, ml-100k, ml-1m.")
    ],
    cache: Annotated[
        Path | None,
        typer.Option(help="Directory to download into (default $PALATE_CACHE or ~/.cache/palate)."),
    ] = None,
    json_output: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Download a MovieLens release (checksum-verified) unless a local copy exists."""
    with session(json_output, verbose) as s:
        found = datasets.find_movielens(name, cache)
        if found is not None:
            path, downloaded = found, False
        else:
            with s.download(name) as progress:
                path = datasets.download_movielens(name, cache, progress=progress)
            downloaded = True
        s.emit({"name": name, "path": str(path), "downloaded": downloaded})
        if downloaded:
            s.say(f"Downloaded {name} to {path}")
        else:
            s.say(f"{name} is already available at {path} (nothing downloaded)")


@app.command("info")
def info(
    source: Annotated[
        str,
        typer.Argument(
            metavar="PATH-OR-NAME",
            help="A ratings file (.csv/.tsv/.parquet), a MovieLens directory or zip, or a "
            "release name such as ml-latest-small.",
        ),
    ],
    download: Annotated[
        bool, typer.Option(help="Download a named release when there is no local copy.")
    ] = True,
    json_output: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Counts, density, rating scale, activity, top genres and most-rated items."""
    with session(json_output, verbose) as s:
        dataset = load_dataset(s, source, download=download)
        facts = describe(dataset)
        s.emit(facts)
        if not s.json:
            _show_info(s, facts)


@app.command("export-feedback")
def export_feedback(
    feedback_db: Annotated[
        Path, typer.Argument(metavar="DB", help="The service's SQLite feedback database.")
    ],
    out: Annotated[
        Path, typer.Option("--out", help="Ratings file to write (.parquet or .csv).")
    ],
    with_data: Annotated[
        str | None,
        typer.Option(
            "--with",
            metavar="NAME-OR-PATH",
            help="Merge the feedback into this data set (the one the model was trained on); "
            "feedback wins where both rate the same pair.",
        ),
    ] = None,
    json_output: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """Write the ratings collected by `palate serve` as a ratings file for the next training.

    The latest rating of each (user, item) pair is kept. The file has columns user_id,
    item_id, rating, timestamp, which `palate train --data FILE` reads.
    """
    from palate.errors import ConfigError, DataError
    from palate.service.feedback import SQLiteFeedbackStore, merge_feedback

    with session(json_output, verbose) as s:
        if not feedback_db.is_file():
            raise DataError(f"no feedback database at {feedback_db}")
        if out.suffix not in (".parquet", ".csv"):
            raise ConfigError(f"--out must end in .parquet or .csv, got {out.name!r}")
        with SQLiteFeedbackStore(feedback_db) as store:
            frame = store.to_frame()
        if frame.empty:
            raise DataError(f"{feedback_db} holds no ratings yet")
        n_feedback = len(frame)
        if with_data is not None:
            dataset = load_dataset(s, with_data)
            merged = merge_feedback(dataset.ratings, frame).to_pandas()
            frame = merged.rename(columns={"value": "rating"})
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix == ".parquet":
            frame.to_parquet(out, index=False)
        else:
            frame.to_csv(out, index=False)
        facts = {
            "out": str(out),
            "feedback_ratings": n_feedback,
            "rows": len(frame),
            "users": int(frame["user_id"].nunique()),
            "items": int(frame["item_id"].nunique()),
            "merged_with": with_data,
        }
        s.emit(facts)
        s.say(
            f"Wrote {len(frame):,} ratings ({n_feedback:,} from the feedback database) to {out}"
        )


def load_dataset(s: Session, source: str, *, download: bool = True) -> Dataset:
    """``palate.datasets.load_interactions`` with a download progress bar and a spinner."""
    with s.download(source) as progress, s.working(f"reading {source}"):
        return datasets.load_interactions(source, download=download, progress=progress)


def _stats(counts: Any) -> dict[str, float]:
    counts = np.asarray(counts)
    counts = counts[counts > 0]
    if not len(counts):
        return {"min": 0, "median": 0, "mean": 0, "max": 0}
    return {
        "min": int(counts.min()),
        "median": float(np.median(counts)),
        "mean": float(counts.mean()),
        "max": int(counts.max()),
    }


def describe(dataset: Dataset) -> dict[str, Any]:
    """The facts ``palate data info`` shows, as a JSON-ready dict."""
    ratings = dataset.ratings
    facts = dict(dataset.summary())
    facts["ratings_per_user"] = _stats(ratings.user_counts())
    facts["ratings_per_item"] = _stats(ratings.item_counts())
    if ratings.kind == "explicit":
        values, counts = np.unique(ratings.values, return_counts=True)
        facts["rating_distribution"] = [
            {"rating": float(v), "count": int(c)} for v, c in zip(values, counts, strict=True)
        ]
    else:
        facts["positive_share"] = float(np.mean(ratings.values == 1)) if len(ratings) else None

    item_counts = pd.Series(ratings.item_counts(), index=ratings.items.ids)
    item_counts = item_counts[item_counts > 0]
    catalog = Catalog(dataset.items, ratings.items)
    most = item_counts.sort_values(ascending=False, kind="stable").head(TOP_ITEMS)
    means = pd.Series(ratings.item_means(), index=ratings.items.ids)
    facts["most_rated"] = [
        {**catalog.describe(plain(i)), "n_ratings": int(n), "mean_rating": float(means[i])}
        for i, n in most.items()
    ]
    facts["top_genres"] = _top_genres(dataset, item_counts)
    return facts


def _top_genres(dataset: Dataset, item_counts: Any) -> list[dict[str, Any]] | None:
    items = dataset.items
    if items is None or "genres" not in items.columns or "item_id" not in items.columns:
        return None
    table = items[["item_id", "genres"]].drop_duplicates("item_id").copy()
    table["genres"] = pd.Series(genre_lists(table["genres"]), index=table.index, dtype=object)
    exploded = table.explode("genres").dropna(subset=["genres"])
    exploded = exploded[exploded["item_id"].isin(item_counts.index)]
    if not len(exploded):
        return []
    exploded["n_ratings"] = exploded["item_id"].map(item_counts).astype("int64")
    grouped = exploded.groupby("genres").agg(
        n_items=("item_id", "nunique"), n_ratings=("n_ratings", "sum")
    )
    grouped = grouped.sort_values("n_ratings", ascending=False, kind="stable").head(TOP_GENRES)
    return [
        {"genre": str(genre), "n_items": int(row.n_items), "n_ratings": int(row.n_ratings)}
        for genre, row in pd.DataFrame(grouped).iterrows()
    ]


def _show_info(s: Session, facts: dict[str, Any]) -> None:
    overview = Table(
        title=facts["name"], title_justify="left", title_style="bold", show_header=False
    )
    overview.add_column(style="bold")
    overview.add_column(overflow="fold")
    if facts["path"]:
        overview.add_row("path", facts["path"])
    overview.add_row("kind", facts["kind"])
    overview.add_row("ratings", f"{facts['n_ratings']:,}")
    overview.add_row("users", f"{facts['n_users']:,}")
    items = f"{facts['n_items']:,}"
    if facts["items_table_rows"] is not None:
        items += f" ({facts['items_table_rows']:,} in the items table)"
    overview.add_row("items", items)
    overview.add_row(
        "density", f"{facts['density']:.2%} of {facts['n_users']:,} x {facts['n_items']:,}"
    )
    if facts["kind"] == "explicit":
        scale = facts["rating_scale"]
        scale_text = "not declared" if scale is None else f"{scale[0]} to {scale[1]}"
        overview.add_row("rating scale", scale_text)
        overview.add_row("mean rating", f"{facts['mean_rating']:.3f}")
        distribution = facts["rating_distribution"]
        if len(distribution) <= 12:
            overview.add_row(
                "ratings given", "  ".join(f"{d['rating']:g}: {d['count']:,}" for d in distribution)
            )
    else:
        overview.add_row("positives", f"{facts['positive_share']:.1%}")
    for what in ("user", "item"):
        st = facts[f"ratings_per_{what}"]
        overview.add_row(
            f"ratings per {what}",
            f"min {st['min']:,}  median {st['median']:,g}  mean {st['mean']:,.1f}  "
            f"max {st['max']:,}",
        )
    if facts["first_timestamp"] is not None:
        def day(ts: int) -> str:
            try:
                return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")
            except (OverflowError, OSError, ValueError):
                return str(ts)

        span = f"{day(facts['first_timestamp'])} to {day(facts['last_timestamp'])} (UTC)"
        overview.add_row("time span", span)
    if facts["users_table_rows"] is not None:
        overview.add_row("users table", f"{facts['users_table_rows']:,} rows")
    s.show(overview)

    if facts["top_genres"]:
        genres = Table(title="Top genres", title_justify="left", title_style="bold")
        genres.add_column("genre")
        genres.add_column("items", justify="right")
        genres.add_column("ratings", justify="right")
        for g in facts["top_genres"]:
            genres.add_row(g["genre"], f"{g['n_items']:,}", f"{g['n_ratings']:,}")
        s.show(genres)

    rows = [{**row, "rank": rank} for rank, row in enumerate(facts["most_rated"], start=1)]
    with_titles = any(row["title"] for row in rows)
    s.show(
        items_table(
            rows,
            title="Most-rated items",
            value_name="ratings",
            value_key="n_ratings",
            value_format="{:,}",
            with_titles=with_titles,
        )
    )
