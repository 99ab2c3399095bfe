"""``palate experiment retrieval-size``: relevance and latency against the candidate count."""

from __future__ import annotations

import os
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from palate.cli._session import JsonOption, Session, VerboseOption, session
from palate.errors import ConfigError

app = typer.Typer(
    help="Offline experiments that produce tables, JSON and plots.", no_args_is_help=True
)


class Ranker(StrEnum):
    ials = "ials"
    cf = "cf"


class IndexKind(StrEnum):
    exact = "exact"
    hnsw = "hnsw"
    ivf = "ivf"
    pq = "pq"


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--sizes takes comma-separated integers, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise ConfigError(f"--sizes takes positive integers, got {text!r}")
    return sizes


def _index(kind: IndexKind) -> dict[str, Any]:
    if kind is IndexKind.exact:
        return {"kind": "exact"}
    if kind is IndexKind.hnsw:
        return {"kind": "hnsw", "hnsw_m": 16, "ef_construction": 40, "ef_search": 64,
                "recall_sample": 300}
    if kind is IndexKind.pq:
        return {"kind": "pq", "refine_factor": 10, "recall_sample": 300}
    return {"kind": "ivf", "nprobe": 32, "recall_sample": 300}


@app.command("retrieval-size")
def retrieval_size(
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            metavar="NAME-OR-PATH",
            help="Ratings with an item table (genres) and a user table, e.g. ml-1m.",
        ),
    ] = None,
    synthetic_items: Annotated[
        int | None,
        typer.Option(
            "--synthetic-items",
            min=100,
            help="Instead of --data: a synthetic catalogue of this many items (planted "
            "low-rank ratings with genres).",
        ),
    ] = None,
    synthetic_users: Annotated[
        int, typer.Option(help="Users of the synthetic catalogue.")
    ] = 20_000,
    synthetic_ratings_per_user: Annotated[
        int, typer.Option(help="Events per user of the synthetic catalogue.")
    ] = 60,
    ranker: Annotated[
        Ranker,
        typer.Option(
            help="ials: ImplicitALS on every event (top-N ranking); cf: explicit collaborative "
            "filtering."
        ),
    ] = Ranker.ials,
    embedding_size: Annotated[int, typer.Option(min=1, help="Ranker vector length.")] = 64,
    epochs: Annotated[int, typer.Option(min=1, help="Ranker training epochs.")] = 10,
    index: Annotated[
        IndexKind,
        typer.Option(help="Vector index of the similar-items and nearest-to-user sources."),
    ] = IndexKind.exact,
    sizes: Annotated[
        str, typer.Option(help="Target candidate counts, comma-separated.")
    ] = "10,20,50,100,200,500,1000",
    users: Annotated[
        int, typer.Option(min=1, help="Test users evaluated (a random sample).")
    ] = 500,
    test_events: Annotated[
        int, typer.Option(min=1, help="Each user's latest events held out as the test set.")
    ] = 10,
    threshold: Annotated[
        float, typer.Option(help="Test ratings >= this are relevant (engaged).")
    ] = 4.0,
    k: Annotated[int, typer.Option("-k", "--k", min=1, help="Items shown.")] = 10,
    seed: Annotated[int, typer.Option(help="Seed of the user sample and the ranker.")] = 0,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", metavar="DIR", help="Write retrieval_size.json, .csv and .png here."
        ),
    ] = None,
    json_output: JsonOption = False,
    verbose: VerboseOption = False,
) -> None:
    """How relevance and latency change with the number of retrieved candidates.

    Holds out each user's latest events, trains the ranker on the rest, fits the default
    sources (10 recent x 10 similar, 3 genres x 10, top 20 per occupation, 20 popular, 100
    nearest to the user vector), and scales them together from 10 to 1,000 candidates; also
    runs each source alone and ranks the whole catalogue for reference. Latency is one
    request per user on one thread.
    """
    from palate import RetrieveThenRank
    from palate.data.split import user_holdout
    from palate.evaluation.retrieval_size import (
        best_operating_point,
        finite_row,
        retrieval_size_experiment,
    )
    from palate.models.registry import build_model
    from palate.retrieval.sources import (
        NearestToUser,
        Popular,
        SimilarToRecent,
        TopInFavoriteGenres,
        TopInSegment,
    )

    with session(json_output, verbose) as s:
        if (data is None) == (synthetic_items is None):
            raise ConfigError("give --data NAME-OR-PATH or --synthetic-items N (one of them)")
        name, ratings, items_table, users_table = _load(
            s, data, synthetic_items, synthetic_users, synthetic_ratings_per_user, seed
        )
        train, test = user_holdout(ratings, last_n=test_events, seed=seed)
        s.say(
            f"Data   {name}: {len(train):,} training and {len(test):,} test events, "
            f"{ratings.n_users:,} users, {ratings.n_items:,} items"
        )
        model = build_model(ranker.value, embedding_size=embedding_size, epochs=epochs, seed=seed)
        started = time.perf_counter()
        with s.working(f"training the {ranker.value} ranker"):
            model.fit(train)
        fit_seconds = time.perf_counter() - started
        vector_index = _index(index)
        sources: list[Any] = [SimilarToRecent(index=vector_index)]
        if items_table is not None and "genres" in items_table.columns:
            sources.append(TopInFavoriteGenres())
        if users_table is not None and "occupation" in users_table.columns:
            sources.append(TopInSegment("occupation"))
        sources += [Popular(), NearestToUser(index=vector_index)]
        started = time.perf_counter()
        with s.working("fitting the sources"):
            pipeline = RetrieveThenRank(model, sources).fit(
                train, item_table=items_table, user_table=users_table
            )
        sources_seconds = time.perf_counter() - started
        with s.working("running the experiment"):
            result = retrieval_size_experiment(
                pipeline, test, sizes=_sizes(sizes), k=k, relevant_threshold=threshold,
                n_users=users, seed=seed,
            )
        result.notes.update(
            load_average_at_end=list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            data=name, ranker=ranker.value, embedding_size=embedding_size, epochs=epochs,
            index=vector_index, test_events_per_user=test_events,
            ranker_fit_seconds=round(fit_seconds, 2),
            sources_fit_seconds=round(sources_seconds, 2),
            index_recall={
                source.name: source.index_.metadata_.get("recall_at_10")  # type: ignore[attr-defined]
                for source in pipeline.sources_
                if getattr(source, "index_", None) is not None
            },
        )
        best = best_operating_point(result)
        document = {
            **result.to_dict(),
            "operating_point": None if best is None else finite_row(vars(best)),
        }
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            result.save_json(out / "retrieval_size.json")
            result.to_frame().to_csv(out / "retrieval_size.csv", index=False)
            document["files"] = [str(out / "retrieval_size.json"), str(out / "retrieval_size.csv")]
            try:
                result.plot(out / "retrieval_size.png",
                            title=f"{name}: retrieve then rank ({ranker.value} ranker)")
                document["files"].append(str(out / "retrieval_size.png"))
            except ConfigError as exc:  # no matplotlib: the table and JSON still stand
                s.note(str(exc))
        s.emit(document)
        s.show(_table(result, name))
        if best is not None:
            s.say(
                f"Operating point: {best.target} candidates (mean {best.candidates:.0f}), "
                f"NDCG@{k} {best.ndcg:.4f}, p99 {best.p99_ms:.2f} ms"
            )
        if out is not None:
            s.say("Wrote " + ", ".join(document["files"]))


def _load(
    s: Session, data: str | None, n_items: int | None, n_users: int, per_user: int, seed: int
) -> tuple[str, Any, Any, Any]:
    if data is not None:
        from palate.cli.data import load_dataset
        from palate.cli.recommend import _user_table

        dataset = load_dataset(s, data)
        return dataset.name, dataset.ratings, dataset.items, _user_table(dataset)
    from palate.data.synthetic import synthetic_ratings

    assert n_items is not None
    with s.working(f"drawing a synthetic catalogue of {n_items:,} items"):
        synthetic = synthetic_ratings(
            n_users, n_items, n_users * per_user, embedding_size=16, seed=seed
        )
    return f"synthetic-{n_items}", synthetic.ratings, synthetic.items, None


def _table(result: Any, name: str) -> Table:
    k = result.k
    table = Table(title=f"Retrieval size on {name} ({result.n_users} users, k = {k})",
                  title_justify="left", title_style="bold")
    for column in ("configuration", "target", "candidates", "cand. recall", f"recall@{k}",
                   f"NDCG@{k}", f"precision@{k}", "p50 ms", "p99 ms"):
        table.add_column(column, justify="left" if column == "configuration" else "right")
    for row in result.rows:
        table.add_row(
            row.config,
            "" if row.target is None else str(row.target),
            f"{row.candidates:,.0f}",
            "" if row.candidate_recall != row.candidate_recall else f"{row.candidate_recall:.3f}",
            f"{row.recall:.4f}",
            f"{row.ndcg:.4f}",
            f"{row.precision:.4f}",
            f"{row.p50_ms:.2f}",
            f"{row.p99_ms:.2f}",
        )
    return table
