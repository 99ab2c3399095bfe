"""MovieLens readers: tiny hand-written copies of each GroupLens layout, and the real data."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from palate.data.movielens import (
    ML1M_OCCUPATIONS,
    MovieLensFiles,
    parse_title_year,
    read_movielens,
    split_genres,
)
from palate.errors import DataError, DatasetNotFoundError

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
ML_LATEST_SMALL = SHARED_DATA / "ml-latest-small"

GENRES_100K = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
]


CHILDRENS = "Children's"


def _flags(*names: str) -> str:
    return "|".join("1" if g in names else "0" for g in GENRES_100K)


def write_100k(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "u.data").write_text(
        "1\t10\t5\t881250949\n"
        "1\t20\t3\t881250950\n"
        "2\t10\t4\t891717742\n"
        "3\t30\t1\t878887116\n"
    )
    (root / "u.item").write_bytes(
        (
            f"10|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy|"
            f"{_flags('Animation', CHILDRENS, 'Comedy')}\n"
            f"20|Café Society (1995) |02-Mar-1996|||{_flags('Drama')}\n"
            f"30|unknown||||{_flags('unknown')}\n"
            f"40|Some Video (V)|05-Oct-1994|||{_flags('Action', 'War')}\n"
        ).encode("ISO-8859-1")
    )
    (root / "u.user").write_text(
        "1|24|M|technician|85711\n2|53|F|other|94043\n3|33|M|writer|T8H1N\n"
    )
    (root / "u.genre").write_text(
        "".join(f"{g}|{i}\n" for i, g in enumerate(GENRES_100K)) + "\n"
    )
    return root


def write_1m(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "ratings.dat").write_text(
        "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n"
    )
    (root / "movies.dat").write_bytes(
        (
            "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
            "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
            "260::Star Wars: Episode IV - A New Hope (1977)::Action|Adventure|Fantasy|Sci-Fi\n"
            "2020::Ma vie en rose (My Life in Pink) (1997)::Comedy|Drama\n"
            "3000::Métisse (Café au Lait) (1993)::Comedy\n"
        ).encode("ISO-8859-1")
    )
    (root / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    return root


def write_csv_layout(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    # GroupLens' csv files have CRLF line endings
    (root / "ratings.csv").write_bytes(
        b"userId,movieId,rating,timestamp\r\n"
        b"1,1,4.0,964982703\r\n"
        b"1,3,0.5,964981247\r\n"
        b"5,1,3.5,847434962\r\n"
        b"5,200,5.0,847435238\r\n"
    )
    (root / "movies.csv").write_bytes(
        "movieId,title,genres\r\n"
        "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\r\n"
        '3,"American President, The (1995)",Comedy|Drama|Romance\r\n'
        "200,Death Note: Desu nôto (2006–2007),(no genres listed)\r\n"
        "300,Cosmos,Documentary\r\n"
        "400,From Dusk Till Dawn 2: Texas Blood Money (1999) ,Comedy|Crime|Horror\r\n".encode()
    )
    (root / "links.csv").write_bytes(
        b"movieId,imdbId,tmdbId\r\n1,0114709,862\r\n3,0112346,9087\r\n200,0877057,13916\r\n"
        b"300,0081846,\r\n400,0134618,12102\r\n"
    )
    return root


def zip_directory(directory: Path, archive: Path, folder: str | None) -> Path:
    """Zip the files of ``directory`` under ``folder/`` (like GroupLens) or flat."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        if folder is not None:
            z.writestr(f"{folder}/", "")
        for file in sorted(directory.iterdir()):
            z.write(file, f"{folder}/{file.name}" if folder else file.name)
    return archive


def events(tables) -> list[tuple[int, int, float, int]]:
    frame = tables.ratings.to_pandas().sort_values(["user_id", "item_id"])
    return [
        (int(u), int(i), float(v), int(t))
        for u, i, v, t in frame[["user_id", "item_id", "value", "timestamp"]].itertuples(
            index=False
        )
    ]


# ------------------------------------------------------------------------------ ml-100k layout
def test_100k_ratings(tmp_path: Path) -> None:
    tables = read_movielens(write_100k(tmp_path / "ml-100k"))
    assert tables.layout == "100k"
    assert events(tables) == [
        (1, 10, 5.0, 881250949),
        (1, 20, 3.0, 881250950),
        (2, 10, 4.0, 891717742),
        (3, 30, 1.0, 878887116),
    ]
    ratings = tables.ratings
    assert ratings.kind == "explicit"
    assert ratings.rating_scale == (1.0, 5.0)
    assert ratings.users.ids.dtype == np.int64 and ratings.items.ids.dtype == np.int64
    assert ratings.users.ids.tolist() == [1, 2, 3]
    assert ratings.items.ids.tolist() == [10, 20, 30]  # item 40 is listed but never rated


def test_100k_items(tmp_path: Path) -> None:
    items = read_movielens(write_100k(tmp_path / "ml-100k")).items
    assert items.columns.tolist()[:4] == ["item_id", "title", "genres", "year"]
    assert items["item_id"].tolist() == [10, 20, 30, 40]
    assert items["item_id"].dtype == np.int64
    # latin-1 decoded, surrounding spaces stripped
    assert items["title"].tolist() == [
        "Toy Story (1995)", "Café Society (1995)", "unknown", "Some Video (V)",
    ]
    assert items["genres"].tolist() == [
        ["Animation", "Children's", "Comedy"], ["Drama"], [], ["Action", "War"],
    ]
    assert str(items["year"].dtype) == "Int64"
    # from the title, else from the release date, else missing
    assert items["year"].tolist() == [1995, 1995, pd.NA, 1994]
    assert items["release_date"].tolist()[:2] == [pd.Timestamp("1995-01-01"),
                                                  pd.Timestamp("1996-03-02")]
    assert pd.isna(items["release_date"].iloc[2])
    assert items["imdb_url"].iloc[0] == "http://us.imdb.com/M/title-exact?Toy"
    assert pd.isna(items["imdb_url"].iloc[1])


def test_100k_users(tmp_path: Path) -> None:
    users = read_movielens(write_100k(tmp_path / "ml-100k")).users
    assert users is not None
    assert users.columns.tolist() == ["user_id", "age", "gender", "occupation", "zip"]
    assert users.to_dict("list") == {
        "user_id": [1, 2, 3],
        "age": [24, 53, 33],
        "gender": ["M", "F", "M"],
        "occupation": ["technician", "other", "writer"],
        "zip": ["85711", "94043", "T8H1N"],  # zips stay strings
    }


def test_100k_without_u_genre_uses_the_standard_genres(tmp_path: Path) -> None:
    root = write_100k(tmp_path / "ml-100k")
    (root / "u.genre").unlink()
    items = read_movielens(root).items
    assert items["genres"].iloc[0] == ["Animation", "Children's", "Comedy"]


# ------------------------------------------------------------------------------ ml-1m layout
def test_1m_layout(tmp_path: Path) -> None:
    tables = read_movielens(write_1m(tmp_path / "ml-1m"))
    assert tables.layout == "dat"
    assert events(tables) == [
        (1, 661, 3.0, 978302109),
        (1, 1193, 5.0, 978300760),
        (2, 1193, 4.0, 978298413),
    ]
    assert tables.ratings.rating_scale == (1.0, 5.0)
    items = tables.items
    assert items["item_id"].tolist() == [661, 1193, 260, 2020, 3000]
    assert items["title"].tolist()[2:] == [
        "Star Wars: Episode IV - A New Hope (1977)",  # a single ':' is not a separator
        "Ma vie en rose (My Life in Pink) (1997)",
        "Métisse (Café au Lait) (1993)",
    ]
    assert items["genres"].tolist()[:3] == [
        ["Animation", "Children's", "Musical"], ["Drama"],
        ["Action", "Adventure", "Fantasy", "Sci-Fi"],
    ]
    assert items["year"].tolist() == [1996, 1975, 1977, 1997, 1993]
    users = tables.users
    assert users is not None
    assert users.columns.tolist()[:5] == ["user_id", "age", "gender", "occupation", "zip"]
    assert users["user_id"].tolist() == [1, 2]
    assert users["age"].tolist() == [1, 56]
    assert users["age_group"].tolist() == ["Under 18", "56+"]
    assert users["gender"].tolist() == ["F", "M"]
    assert users["occupation"].tolist() == ["K-12 student", "self-employed"]
    assert users["occupation_code"].tolist() == [10, 16]
    assert users["zip"].tolist() == ["48067", "70072"]


def test_1m_occupation_names_follow_the_readme() -> None:
    assert len(ML1M_OCCUPATIONS) == 21
    assert ML1M_OCCUPATIONS[0] == "other or not specified"
    assert ML1M_OCCUPATIONS[1] == "academic/educator"
    assert ML1M_OCCUPATIONS[20] == "writer"


def test_1m_unknown_codes_are_an_error(tmp_path: Path) -> None:
    root = write_1m(tmp_path / "ml-1m")
    (root / "users.dat").write_text("1::F::1::21::48067\n")
    with pytest.raises(DataError, match=r"occupation codes \[21\]"):
        read_movielens(root)
    (root / "users.dat").write_text("1::F::2::10::48067\n")
    with pytest.raises(DataError, match=r"age codes \[2\]"):
        read_movielens(root)


def test_dat_without_users_is_half_star(tmp_path: Path) -> None:
    root = write_1m(tmp_path / "ml-10m")
    (root / "users.dat").unlink()
    (root / "ratings.dat").write_text("1::661::4.5::978302109\n")
    tables = read_movielens(root)
    assert tables.users is None
    assert tables.ratings.rating_scale == (0.5, 5.0)
    assert events(tables) == [(1, 661, 4.5, 978302109)]


# ------------------------------------------------------------------------------ csv layout
def test_csv_layout(tmp_path: Path) -> None:
    tables = read_movielens(write_csv_layout(tmp_path / "ml-latest-small"))
    assert tables.layout == "csv"
    assert tables.users is None
    assert events(tables) == [
        (1, 1, 4.0, 964982703),
        (1, 3, 0.5, 964981247),
        (5, 1, 3.5, 847434962),
        (5, 200, 5.0, 847435238),
    ]
    assert tables.ratings.rating_scale == (0.5, 5.0)
    items = tables.items
    assert items.columns.tolist() == ["item_id", "title", "genres", "year", "imdb_id", "tmdb_id"]
    assert items["title"].tolist() == [
        "Toy Story (1995)",
        "American President, The (1995)",
        "Death Note: Desu nôto (2006–2007)",
        "Cosmos",
        "From Dusk Till Dawn 2: Texas Blood Money (1999)",
    ]
    assert items["genres"].tolist() == [
        ["Adventure", "Animation", "Children", "Comedy", "Fantasy"],
        ["Comedy", "Drama", "Romance"],
        [],
        ["Documentary"],
        ["Comedy", "Crime", "Horror"],
    ]
    assert items["year"].tolist() == [1995, 1995, 2006, pd.NA, 1999]
    assert items["imdb_id"].tolist()[:2] == ["0114709", "0112346"]  # leading zeros kept
    assert items["tmdb_id"].tolist() == [862, 9087, 13916, pd.NA, 12102]


def test_csv_layout_without_links(tmp_path: Path) -> None:
    root = write_csv_layout(tmp_path / "x")
    (root / "links.csv").unlink()
    items = read_movielens(root).items
    assert items.columns.tolist() == ["item_id", "title", "genres", "year"]


def test_explicit_rating_scale_is_enforced(tmp_path: Path) -> None:
    root = write_csv_layout(tmp_path / "x")
    with pytest.raises(DataError, match="outside the declared scale"):
        read_movielens(root, rating_scale=(1.0, 5.0))  # the 0.5 rating falls outside


# ------------------------------------------------------------------------------ zips
@pytest.mark.parametrize("writer", [write_100k, write_1m, write_csv_layout])
@pytest.mark.parametrize("folder", ["release", None])
def test_zip_reads_like_the_directory(tmp_path: Path, writer, folder: str | None) -> None:
    root = writer(tmp_path / "files")
    archive = zip_directory(root, tmp_path / "copy.zip", folder)
    from_dir, from_zip = read_movielens(root), read_movielens(archive)
    assert from_zip.layout == from_dir.layout
    assert events(from_zip) == events(from_dir)
    pd.testing.assert_frame_equal(from_zip.items, from_dir.items)
    if from_dir.users is None:
        assert from_zip.users is None
    else:
        pd.testing.assert_frame_equal(from_zip.users, from_dir.users)


def test_zip_prefers_the_shallowest_member(tmp_path: Path) -> None:
    root = write_100k(tmp_path / "files")
    archive = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for file in root.iterdir():
            z.write(file, f"ml-100k/{file.name}")
        z.writestr("ml-100k/old/u.data", "999\t999\t1\t1\n")
        z.writestr("__MACOSX/ml-100k/._u.data", "junk")
    files = MovieLensFiles(archive)
    assert files.is_zip and files.layout == "100k"
    assert read_movielens(archive).ratings.users.ids.tolist() == [1, 2, 3]


# ------------------------------------------------------------------------------ errors
def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        read_movielens(tmp_path / "nowhere")


def test_directory_without_movielens_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="u.data, ratings.dat or ratings.csv"):
        read_movielens(tmp_path)


def test_incomplete_copy_names_the_missing_file(tmp_path: Path) -> None:
    root = write_100k(tmp_path / "ml-100k")
    (root / "u.item").unlink()
    with pytest.raises(DatasetNotFoundError, match=r"lacks u\.item"):
        read_movielens(root)


def test_not_a_zip(tmp_path: Path) -> None:
    bogus = tmp_path / "ml-100k.zip"
    bogus.write_text("this is not a zip")
    with pytest.raises(DataError, match="not a readable zip"):
        read_movielens(bogus)


def test_malformed_file_is_named(tmp_path: Path) -> None:
    root = write_100k(tmp_path / "ml-100k")
    (root / "u.data").write_text("1\t10\tfive\t881250949\n")
    with pytest.raises(DataError, match=r"cannot parse u\.data"):
        read_movielens(root)


def test_duplicate_events_are_an_error(tmp_path: Path) -> None:
    root = write_100k(tmp_path / "ml-100k")
    with open(root / "u.data", "a") as handle:
        handle.write("1\t10\t2\t881250999\n")
    with pytest.raises(DataError, match="duplicate"):
        read_movielens(root)


# ------------------------------------------------------------------------------ helpers
def test_parse_title_year() -> None:
    titles = pd.Series([
        "Toy Story (1995)", "Heat (1995) ", "Death Note (2006–2007)", "Show (2007-)",
        "Land Before Time III (1995) (V)", "Cosmos", "1984 (Nineteen Eighty-Four)", "",
    ])
    assert parse_title_year(titles).tolist() == [
        1995, 1995, 2006, 2007, 1995, pd.NA, pd.NA, pd.NA,
    ]


def test_split_genres() -> None:
    genres = pd.Series(["Action|Comedy", "(no genres listed)", "Drama", None])
    assert split_genres(genres).tolist() == [["Action", "Comedy"], [], ["Drama"], []]


# ------------------------------------------------------------------------------ real data
@pytest.mark.skipif(not (ML_LATEST_SMALL / "ratings.csv").is_file(),
                    reason="shared ml-latest-small copy not present")
def test_real_ml_latest_small() -> None:
    tables = read_movielens(ML_LATEST_SMALL)
    ratings = tables.ratings
    assert len(ratings) == 100_836
    assert ratings.shape == (610, 9_724)
    assert ratings.rating_scale == (0.5, 5.0)
    assert np.isclose(ratings.global_mean(), 3.501557, atol=1e-6)
    assert set(np.unique(ratings.values).tolist()) == {0.5 * k for k in range(1, 11)}
    items = tables.items
    assert len(items) == 9_742
    assert items["item_id"].is_unique
    toy = items.set_index("item_id").loc[1]
    assert toy["title"] == "Toy Story (1995)"
    assert toy["genres"] == ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]
    assert toy["year"] == 1995 and toy["imdb_id"] == "0114709" and toy["tmdb_id"] == 862
    assert sum(len(g) == 0 for g in items["genres"]) == 34  # "(no genres listed)"
    assert int(items["year"].isna().sum()) == 12  # titles without a year
    assert ratings.timestamps is not None
    assert int(ratings.timestamps.min()) == 828124615


@pytest.mark.slow
def test_real_ml_100k(tmp_path: Path) -> None:
    from palate.datasets import default_cache_dir

    script = SHARED_DATA / "get-ml-100k"
    if not script.is_file():
        pytest.skip("shared/data/get-ml-100k not present")
    target = default_cache_dir() / "ml-100k"
    done = subprocess.run([str(script), str(target)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"get-ml-100k could not rebuild ml-100k (no network?): {done.stderr[-300:]}")
    tables = read_movielens(target)
    ratings = tables.ratings
    assert len(ratings) == 100_000
    assert ratings.shape == (943, 1_682)
    assert ratings.rating_scale == (1.0, 5.0)
    first = ratings.to_pandas().iloc[0]
    assert (first["user_id"], first["item_id"], first["value"], first["timestamp"]) == (
        196, 242, 3.0, 881250949
    )
    assert np.isclose(ratings.global_mean(), 3.52986, atol=1e-5)
    assert len(tables.items) == 1_682
    toy = tables.items.set_index("item_id").loc[1]
    assert toy["title"] == "Toy Story (1995)"
    assert toy["genres"] == ["Animation", "Children's", "Comedy"] and toy["year"] == 1995
    users = tables.users
    assert users is not None and len(users) == 943
    assert users.iloc[0].tolist() == [1, 24, "M", "technician", "85711"]
    # the same from a zip, read without unpacking
    archive = zip_directory(target, tmp_path / "ml-100k.zip", "ml-100k")
    assert len(read_movielens(archive).ratings) == 100_000


@pytest.mark.slow
def test_real_ml_1m() -> None:
    from palate.datasets import default_cache_dir

    script = SHARED_DATA / "get-ml-1m"
    if not script.is_file() or shutil.which("bash") is None:
        pytest.skip("shared/data/get-ml-1m not present")
    target = default_cache_dir() / "ml-1m"
    done = subprocess.run([str(script), str(target)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"get-ml-1m could not rebuild ml-1m (no network?): {done.stderr[-300:]}")
    tables = read_movielens(target)
    ratings = tables.ratings
    assert len(ratings) == 1_000_209
    assert ratings.shape == (6_040, 3_706)
    assert len(tables.items) == 3_883
    users = tables.users
    assert users is not None and len(users) == 6_040
    assert users.iloc[0][["user_id", "age", "gender", "occupation", "zip"]].tolist() == [
        1, 1, "F", "K-12 student", "48067"
    ]
    first = ratings.to_pandas().iloc[0]
    assert (first["user_id"], first["value"], first["timestamp"]) == (1, 5.0, 978300760)
