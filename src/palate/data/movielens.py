"""MovieLens: the GroupLens layouts and their readers (a directory or the zip), and the releases.

Three layouts exist, told apart by the ratings file they hold:

========  ==================================  ================================================
layout    releases                            files (``*`` optional)
========  ==================================  ================================================
``100k``  ml-100k                             ``u.data`` (tab), ``u.item``, ``u.user`` ('|'),
                                              ``u.genre*``; ISO-8859-1
``dat``   ml-1m, ml-10m                       ``ratings.dat``, ``movies.dat``, ``users.dat``
                                              (ml-1m only); '::' between fields, ISO-8859-1
``csv``   ml-latest-small, ml-latest,         ``ratings.csv``, ``movies.csv``, ``links.csv*``;
          ml-20m, ml-25m, ml-32m              UTF-8 with a header row
========  ==================================  ================================================

:func:`read_movielens` turns any of them into the same three tables: the ratings as
:class:`~palate.data.Interactions` (explicit, int64 user and item ids, timestamps), an items
table (``item_id, title, genres, year`` and whatever else the layout has) and, for ml-100k and
ml-1m, a users table (``user_id, age, gender, occupation, zip``).

:data:`RELEASES` lists the releases palate knows (:class:`MovieLensRelease`: layout, rating
scale, and the digests a download must match). Digests of the GroupLens zips
(https://files.grouplens.org/datasets/movielens/<name>.zip):

- SHA-256 and size: as pinned by TensorFlow Datasets
  (``tensorflow_datasets/url_checksums/movielens.txt``) for ml-latest-small, ml-100k, ml-1m,
  ml-20m and ml-25m; the same SHA-256 values are pinned independently by other projects.
- MD5: as GroupLens publishes beside each zip (``<name>.zip.md5``) for ml-100k, ml-1m,
  ml-10m, ml-20m, ml-25m and ml-32m.

ml-32m and ml-10m have only GroupLens' MD5 (ml-32m also its size, 238,950,008 bytes): no
published SHA-256 was found, so their downloads are checked against the MD5 (and size)
only. ml-latest is a rolling release that GroupLens rebuilds from time to time, so it has
no fixed digest at all: its download is accepted after a warning in the log, and checked
only for being a zip that holds the expected files.

This module only parses and describes; finding a copy and loading it is
:mod:`palate.data.loaders`' job, downloading it :mod:`palate.data.download`'s.
"""

from __future__ import annotations

import csv
import io
import logging
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from os import PathLike
from pathlib import Path, PurePosixPath
from typing import IO, Any, Literal, NamedTuple

import numpy as np
import pandas as pd

from palate.data.catalog import genre_lists
from palate.data.interactions import Interactions
from palate.data.vocabulary import Vocabulary
from palate.errors import ConfigError, DataError, DatasetNotFoundError

logger = logging.getLogger(__name__)

Layout = Literal["100k", "dat", "csv"]

#: The ratings file that identifies each layout.
RATINGS_FILE: dict[str, str] = {"100k": "u.data", "dat": "ratings.dat", "csv": "ratings.csv"}

#: Files every copy of a layout must hold (``users.dat`` is ml-1m only, so not required).
REQUIRED_FILES: dict[str, tuple[str, ...]] = {
    "100k": ("u.data", "u.item", "u.user"),
    "dat": ("ratings.dat", "movies.dat"),
    "csv": ("ratings.csv", "movies.csv"),
}

#: ml-100k's 19 genres in the order of the flags in ``u.item`` (used when ``u.genre`` is absent).
ML100K_GENRES: tuple[str, ...] = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)

#: ml-1m's occupation codes (``users.dat``), as its README names them.
ML1M_OCCUPATIONS: dict[int, str] = {
    0: "other or not specified",
    1: "academic/educator",
    2: "artist",
    3: "clerical/admin",
    4: "college/grad student",
    5: "customer service",
    6: "doctor/health care",
    7: "executive/managerial",
    8: "farmer",
    9: "homemaker",
    10: "K-12 student",
    11: "lawyer",
    12: "programmer",
    13: "retired",
    14: "sales/marketing",
    15: "scientist",
    16: "self-employed",
    17: "technician/engineer",
    18: "tradesman/craftsman",
    19: "unemployed",
    20: "writer",
}

#: ml-1m's age codes (``users.dat``): each code is the lower end of an age range.
ML1M_AGE_GROUPS: dict[int, str] = {
    1: "Under 18",
    18: "18-24",
    25: "25-34",
    35: "35-44",
    45: "45-49",
    50: "50-55",
    56: "56+",
}

#: What the csv layouts write instead of an empty genre list.
NO_GENRES = "(no genres listed)"

_LATIN1 = "ISO-8859-1"
# "(1995)" or "(2006-2007)" / "(2006–2007)" / "(2007-)" at the very end of a title
# (a trailing "(V)" or "(TV)" marks a video or TV release, as in ml-100k)
_TITLE_YEAR = re.compile(r"\((\d{4})(?:\s*[-\u2013]\s*(?:\d{4})?)?\)(?:\s*\((?:V|TV)\))?\s*$")
# A byte that never occurs in MovieLens text: "::" is rewritten to it so the C parser can split
_DAT_SEPARATOR = "\x1f"


class MovieLensTables(NamedTuple):
    """The parsed tables of one MovieLens copy.

    Attributes
    ----------
    ratings : Interactions
        Explicit ratings, int64 user and item ids, timestamps in seconds since the epoch.
    items : DataFrame, shape (n_movies, ...)
        ``item_id`` (int64), ``title`` (str), ``genres`` (list of str per row, empty when the
        data lists none), ``year`` (nullable Int64) and layout-specific columns.
    users : DataFrame or None
        ``user_id, age, gender, occupation, zip`` for ml-100k and ml-1m; ``None`` for the
        csv layouts, which have no user table.
    layout : {"100k", "dat", "csv"}
    """

    ratings: Interactions
    items: pd.DataFrame
    users: pd.DataFrame | None
    layout: Layout


# ---------------------------------------------------------------------------------- sources
class MovieLensFiles:
    """Read-only access to the files of one MovieLens copy, in a directory or a zip.

    In a zip, a file is found by its base name at the shallowest depth, so both
    ``ml-100k.zip`` (members ``ml-100k/u.data``, ...) and a flat zip work. Nothing is
    extracted: members are read straight from the archive.

    Parameters
    ----------
    path : path-like
        A directory holding the files (not in a sub-directory) or a ``.zip`` file.

    Examples
    --------
    >>> files = MovieLensFiles("ml-100k.zip")  # doctest: +SKIP
    >>> files.layout, files.has("u.genre")  # doctest: +SKIP
    ('100k', True)
    """

    def __init__(self, path: str | PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self._members: dict[str, str] | None = None
        if self.path.is_file():
            try:
                with zipfile.ZipFile(self.path) as archive:
                    names = archive.namelist()
            except (zipfile.BadZipFile, OSError) as exc:
                raise DataError(
                    f"{self.path} is not a readable zip file ({exc}); pass the GroupLens zip "
                    "or the directory it unpacks to"
                ) from exc
            self._members = _index_members(names, self.path)
        elif not self.path.is_dir():
            raise DatasetNotFoundError(
                f"{self.path} does not exist; pass a directory holding the MovieLens files "
                "or the GroupLens zip file"
            )

    @property
    def is_zip(self) -> bool:
        return self._members is not None

    def has(self, name: str) -> bool:
        """Whether the copy holds a file called ``name``."""
        if self._members is not None:
            return name in self._members
        return (self.path / name).is_file()

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        """Open one file for binary reading (a zip member is streamed, not extracted)."""
        if not self.has(name):
            raise DatasetNotFoundError(f"{self.path} has no file {name!r}")
        if self._members is None:
            with open(self.path / name, "rb") as handle:
                yield handle
        else:
            with zipfile.ZipFile(self.path) as archive, archive.open(self._members[name]) as h:
                yield h

    def read_bytes(self, name: str) -> bytes:
        """The whole content of one file."""
        with self.open(name) as handle:
            return handle.read()

    @property
    def layout(self) -> Layout:
        """Which GroupLens layout this copy has, told by its ratings file."""
        for layout, ratings_file in RATINGS_FILE.items():
            if self.has(ratings_file):
                return layout  # type: ignore[return-value]
        raise DatasetNotFoundError(
            f"{self.path} holds no MovieLens ratings file (u.data, ratings.dat or ratings.csv); "
            "pass the directory the GroupLens zip unpacks to, or the zip itself"
        )

    def __repr__(self) -> str:
        return f"MovieLensFiles({str(self.path)!r})"


def _index_members(names: list[str], where: Path) -> dict[str, str]:
    """Map base name -> member name, preferring the shallowest member of each name."""
    best: dict[str, tuple[int, str]] = {}
    clashes: set[str] = set()
    for member in names:
        if member.endswith("/"):
            continue
        parts = PurePosixPath(member).parts
        if not parts or parts[0] == "__MACOSX" or parts[-1].startswith("._"):
            continue
        depth, base = len(parts), parts[-1]
        if base not in best or depth < best[base][0]:
            best[base] = (depth, member)
            clashes.discard(base)
        elif depth == best[base][0]:
            clashes.add(base)
    ambiguous = sorted(clashes & set(RATINGS_FILE.values()))
    if ambiguous:
        raise DataError(
            f"{where} holds several {ambiguous[0]!r} files at the same depth; unzip it and "
            "pass the directory of the copy you want"
        )
    return {base: member for base, (_, member) in best.items()}


# ---------------------------------------------------------------------------------- helpers
def parse_title_year(titles: pd.Series) -> pd.Series:
    """Year at the end of MovieLens titles, ``"Toy Story (1995)"`` -> 1995.

    A range such as ``"(2006–2007)"`` gives its first year; titles without a year give
    ``<NA>``.

    Parameters
    ----------
    titles : Series of str, shape (n,)

    Returns
    -------
    Series of Int64, shape (n,)

    Examples
    --------
    >>> parse_title_year(pd.Series(["Heat (1995)", "Cosmos", "Death Note (2006–2007)"])).tolist()
    [1995, <NA>, 2006]
    """
    years = titles.astype(str).str.extract(_TITLE_YEAR, expand=False)
    return pd.to_numeric(years, errors="coerce").astype("Int64")


def split_genres(genres: pd.Series) -> pd.Series:
    """``"Action|Comedy"`` -> ``["Action", "Comedy"]``; ``"(no genres listed)"`` -> ``[]``
    (:func:`palate.data.catalog.genre_list` on each value, MovieLens' marker read as none)."""
    return pd.Series(
        genre_lists(None if g == NO_GENRES else g for g in genres.tolist()),
        index=genres.index,
        dtype=object,
    )


def _read_table(
    files: MovieLensFiles,
    name: str,
    sep: str,
    columns: list[str],
    dtype: dict[str, Any],
    *,
    encoding: str = "utf-8",
    header: bool = False,
) -> pd.DataFrame:
    """Parse one delimited file with the C engine; any failure names the file."""
    try:
        if sep == "::":
            # The C parser takes one-character separators only; '::' never occurs inside a
            # field and the unit separator never occurs in the data, so swap them.
            raw = files.read_bytes(name).replace(b"::", _DAT_SEPARATOR.encode())
            frame = _parse(io.BytesIO(raw), _DAT_SEPARATOR, columns, dtype, encoding, header)
        else:
            with files.open(name) as handle:
                frame = _parse(handle, sep, columns, dtype, encoding, header)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(
            f"cannot parse {name} in {files.path}: {exc}; is it an unmodified GroupLens file?"
        ) from exc
    return frame


def _parse(
    source: Any,
    sep: str,
    columns: list[str],
    dtype: dict[str, Any],
    encoding: str,
    header: bool,
) -> pd.DataFrame:
    frame = pd.read_csv(
        source,
        sep=sep,
        header=0 if header else None,
        names=None if header else columns,
        usecols=columns if header else None,
        dtype=dtype,
        encoding=encoding,
        quoting=csv.QUOTE_NONE if not header else csv.QUOTE_MINIMAL,
        engine="c",
        keep_default_na=False,
        na_values=[""],
    )
    if header:
        frame = frame[columns]
    return frame


def _interactions(
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    ratings: np.ndarray,
    timestamps: np.ndarray,
    rating_scale: tuple[float, float],
) -> Interactions:
    """Explicit interactions with sorted int64 vocabularies (deterministic indices)."""
    user_ids = np.asarray(user_ids, dtype=np.int64)
    item_ids = np.asarray(item_ids, dtype=np.int64)
    return Interactions.from_arrays(
        user_ids,
        item_ids,
        np.asarray(ratings, dtype=np.float64),
        np.asarray(timestamps, dtype=np.int64),
        kind="explicit",
        rating_scale=rating_scale,
        users=Vocabulary(np.unique(user_ids)),
        items=Vocabulary(np.unique(item_ids)),
    )


_RATING_COLUMNS = ["user_id", "item_id", "rating", "timestamp"]
_RATING_DTYPES = {"user_id": "int64", "item_id": "int64", "rating": "float64",
                  "timestamp": "int64"}


def _check_required(files: MovieLensFiles, layout: str) -> None:
    missing = [name for name in REQUIRED_FILES[layout] if not files.has(name)]
    if missing:
        raise DatasetNotFoundError(
            f"{files.path} lacks {', '.join(missing)} (a complete copy of this MovieLens "
            f"release holds {', '.join(REQUIRED_FILES[layout])}); unpack the whole GroupLens zip"
        )


# ---------------------------------------------------------------------------------- layouts
def _read_100k(files: MovieLensFiles, scale: tuple[float, float]) -> MovieLensTables:
    ratings = _read_table(files, "u.data", "\t", _RATING_COLUMNS, _RATING_DTYPES)

    genre_names = list(ML100K_GENRES)
    if files.has("u.genre"):
        genre_names = _read_100k_genres(files)
    flag_columns = [f"flag_{k}" for k in range(len(genre_names))]
    item_columns = ["item_id", "title", "release_date", "video_release_date", "imdb_url",
                    *flag_columns]
    raw = _read_table(
        files, "u.item", "|", item_columns,
        {"item_id": "int64", "title": str, "release_date": str, "video_release_date": str,
         "imdb_url": str, **dict.fromkeys(flag_columns, "int8")},
        encoding=_LATIN1,
    )
    flags = raw[flag_columns].to_numpy(dtype=bool)
    # "unknown" is ml-100k's flag for "no genre"; it becomes an empty list like the csv
    # layouts' "(no genres listed)", so genre features mean the same across releases.
    names = np.array(genre_names, dtype=object)
    known = names != "unknown"
    genres = [names[row & known].tolist() for row in flags]
    title = raw["title"].fillna("").astype(str).str.strip()
    release = pd.to_datetime(raw["release_date"], format="%d-%b-%Y", errors="coerce")
    year = parse_title_year(title)
    year = year.fillna(pd.Series(release.dt.year, index=year.index).astype("Int64"))
    items = pd.DataFrame({
        "item_id": raw["item_id"].astype("int64"),
        "title": title,
        "genres": pd.Series(genres, index=raw.index, dtype=object),
        "year": year,
        "release_date": release,
        "imdb_url": raw["imdb_url"],
    })

    users = _read_table(
        files, "u.user", "|", ["user_id", "age", "gender", "occupation", "zip"],
        {"user_id": "int64", "age": "int64", "gender": str, "occupation": str, "zip": str},
        encoding=_LATIN1,
    )
    return MovieLensTables(_ratings_from(ratings, scale), items, users, "100k")


def _read_100k_genres(files: MovieLensFiles) -> list[str]:
    text = files.read_bytes("u.genre").decode(_LATIN1)
    pairs = []
    for line in text.splitlines():
        if not line.strip():
            continue
        name, _, index = line.rpartition("|")
        if not name or not index.strip().isdigit():
            raise DataError(f"cannot parse u.genre line {line!r} in {files.path}")
        pairs.append((int(index), name))
    pairs.sort()
    if [i for i, _ in pairs] != list(range(len(pairs))):
        raise DataError(f"u.genre in {files.path} does not number its genres 0..n-1")
    return [name for _, name in pairs]


def _read_dat(files: MovieLensFiles, scale: tuple[float, float]) -> MovieLensTables:
    ratings = _read_table(files, "ratings.dat", "::", _RATING_COLUMNS, _RATING_DTYPES,
                          encoding=_LATIN1)
    raw = _read_table(files, "movies.dat", "::", ["item_id", "title", "genres"],
                      {"item_id": "int64", "title": str, "genres": str}, encoding=_LATIN1)
    items = _items_from(raw)
    users = None
    if files.has("users.dat"):
        users_raw = _read_table(
            files, "users.dat", "::", ["user_id", "gender", "age", "occupation", "zip"],
            {"user_id": "int64", "gender": str, "age": "int64", "occupation": "int64",
             "zip": str},
            encoding=_LATIN1,
        )
        for column, codes in (("occupation", ML1M_OCCUPATIONS), ("age", ML1M_AGE_GROUPS)):
            unknown = sorted(set(users_raw[column].tolist()) - set(codes))
            if unknown:
                raise DataError(
                    f"users.dat in {files.path} has {column} codes {unknown[:5]} that ml-1m's "
                    f"README does not define ({sorted(codes)}); is it an unmodified ml-1m file?"
                )
        users = pd.DataFrame({
            "user_id": users_raw["user_id"],
            "age": users_raw["age"],
            "gender": users_raw["gender"],
            "occupation": users_raw["occupation"].map(ML1M_OCCUPATIONS).astype("str"),
            "zip": users_raw["zip"],
            "age_group": users_raw["age"].map(ML1M_AGE_GROUPS).astype("str"),
            "occupation_code": users_raw["occupation"],
        })
    return MovieLensTables(_ratings_from(ratings, scale), items, users, "dat")


def _read_csv_layout(files: MovieLensFiles, scale: tuple[float, float]) -> MovieLensTables:
    ratings = _read_table(
        files, "ratings.csv", ",", ["userId", "movieId", "rating", "timestamp"],
        {"userId": "int64", "movieId": "int64", "rating": "float64", "timestamp": "int64"},
        header=True,
    )
    ratings.columns = _RATING_COLUMNS
    raw = _read_table(files, "movies.csv", ",", ["movieId", "title", "genres"],
                      {"movieId": "int64", "title": str, "genres": str}, header=True)
    raw.columns = ["item_id", "title", "genres"]
    items = _items_from(raw)
    if files.has("links.csv"):
        links = _read_table(files, "links.csv", ",", ["movieId", "imdbId", "tmdbId"],
                            {"movieId": "int64", "imdbId": str, "tmdbId": "Int64"}, header=True)
        links.columns = ["item_id", "imdb_id", "tmdb_id"]
        items = items.merge(links, on="item_id", how="left", validate="one_to_one")
    return MovieLensTables(_ratings_from(ratings, scale), items, None, "csv")


def _items_from(raw: pd.DataFrame) -> pd.DataFrame:
    title = raw["title"].fillna("").astype(str).str.strip()
    return pd.DataFrame({
        "item_id": raw["item_id"].astype("int64"),
        "title": title,
        "genres": split_genres(raw["genres"]),
        "year": parse_title_year(title),
    })


def _ratings_from(frame: pd.DataFrame, scale: tuple[float, float]) -> Interactions:
    return _interactions(
        frame["user_id"].to_numpy(),
        frame["item_id"].to_numpy(),
        frame["rating"].to_numpy(),
        frame["timestamp"].to_numpy(),
        scale,
    )


_READERS = {"100k": _read_100k, "dat": _read_dat, "csv": _read_csv_layout}


def default_rating_scale(files: MovieLensFiles) -> tuple[float, float]:
    """The declared scale of a copy: whole stars 1-5 for ml-100k and ml-1m, half stars
    0.5-5 for ml-10m (``.dat`` without ``users.dat``) and the csv releases."""
    layout = files.layout
    if layout == "100k" or (layout == "dat" and files.has("users.dat")):
        return (1.0, 5.0)
    return (0.5, 5.0)


def read_movielens(
    path: str | PathLike[str],
    *,
    rating_scale: tuple[float, float] | None = None,
) -> MovieLensTables:
    """Parse a MovieLens copy in one of GroupLens' layouts.

    Parameters
    ----------
    path : path-like
        The directory the GroupLens zip unpacks to (``ml-100k/``, holding ``u.data``...) or
        the zip file itself, read without extracting.
    rating_scale : (low, high), optional
        Declared rating scale; by default (1, 5) for ml-100k and ml-1m, (0.5, 5) for the
        half-star releases (ml-10m and every csv release).

    Returns
    -------
    MovieLensTables
        ``ratings`` (n events, ids as in the files), ``items`` (one row per movie listed,
        rated or not), ``users`` (ml-100k, ml-1m) or ``None``, and the ``layout``.

    Raises
    ------
    DatasetNotFoundError
        The path does not exist or lacks a required file.
    DataError
        A file cannot be parsed, or a rating falls outside the scale.

    Notes
    -----
    ``year`` comes from the ``"(1995)"`` that ends a title (the first year of a range such
    as ``"(2006–2007)"``), else from ml-100k's release date, else ``<NA>``. Titles are
    stripped of surrounding spaces. ml-100k's genre flag ``"unknown"`` means "no genre" and
    gives an empty list, like the csv releases' ``"(no genres listed)"``. ml-1m's ``age``
    is its code (the lower end of a range, 1 meaning under 18; ``age_group`` has the
    range) and ``occupation`` the name its README gives the code.

    Examples
    --------
    >>> tables = read_movielens("ml-latest-small")  # doctest: +SKIP
    >>> tables.ratings.shape, len(tables.items)  # doctest: +SKIP
    ((610, 9724), 9742)
    """
    files = MovieLensFiles(path)
    layout = files.layout
    _check_required(files, layout)
    scale = default_rating_scale(files) if rating_scale is None else rating_scale
    tables = _READERS[layout](files, scale)
    logger.info(
        "read MovieLens (%s layout) from %s: %d ratings, %d users, %d items",
        layout, files.path, len(tables.ratings), tables.ratings.n_users, tables.ratings.n_items,
    )
    return tables


# --------------------------------------------------------------------------------- releases
@dataclass(frozen=True)
class MovieLensRelease:
    """One GroupLens MovieLens release.

    Attributes
    ----------
    name : str
        The name of the zip and of the directory it unpacks to, e.g. ``"ml-100k"``.
    layout : {"100k", "dat", "csv"}
        Which files it holds (see :mod:`palate.data.movielens`).
    rating_scale : (low, high)
    description : str
    folder : str
        Top-level directory inside the zip (``ml-10M100K`` for ml-10m, else ``name``).
    size : int or None
        Size of the zip in bytes, when pinned.
    sha256, md5 : str or None
        Hex digests of the zip, when pinned.
    """

    name: str
    layout: Layout
    rating_scale: tuple[float, float]
    description: str
    folder: str = ""
    size: int | None = None
    sha256: str | None = None
    md5: str | None = None

    def __post_init__(self) -> None:
        if not self.folder:
            object.__setattr__(self, "folder", self.name)

    @property
    def filename(self) -> str:
        """Name of the GroupLens zip, ``"<name>.zip"``."""
        return f"{self.name}.zip"

    @property
    def ratings_file(self) -> str:
        """The file whose presence marks a copy of this release."""
        return REQUIRED_FILES[self.layout][0]

    @property
    def files(self) -> tuple[str, ...]:
        """The files a copy must hold (ml-1m's users.dat included)."""
        if self.name == "ml-1m":
            return (*REQUIRED_FILES["dat"], "users.dat")
        return REQUIRED_FILES[self.layout]

    @property
    def is_verified(self) -> bool:
        """Whether a download can be checked against a pinned digest."""
        return self.sha256 is not None or self.md5 is not None


_HALF_STARS = (0.5, 5.0)
_WHOLE_STARS = (1.0, 5.0)

RELEASES: dict[str, MovieLensRelease] = {
    release.name: release
    for release in (
        MovieLensRelease(
            "ml-latest-small", "csv", _HALF_STARS,
            "100,836 ratings by 610 users; 9,742 movies (2018 snapshot)",
            size=978_202,
            sha256="696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
        ),
        MovieLensRelease(
            "ml-100k", "100k", _WHOLE_STARS,
            "100,000 ratings by 943 users; 1,682 movies; user attributes",
            size=4_924_029,
            sha256="50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
            md5="0e33842e24a9c977be4e0107933c0723",
        ),
        MovieLensRelease(
            "ml-1m", "dat", _WHOLE_STARS,
            "1,000,209 ratings by 6,040 users; 3,883 movies; user attributes",
            size=5_917_549,
            sha256="a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
            md5="c4d9eecfca2ab87c1945afe126590906",
        ),
        MovieLensRelease(
            "ml-10m", "dat", _HALF_STARS,
            "10,000,054 ratings by 71,567 users; 10,681 movies",
            folder="ml-10M100K",
            md5="ce571fd55effeba0271552578f2648bd",
        ),
        MovieLensRelease(
            "ml-20m", "csv", _HALF_STARS,
            "20,000,263 ratings by 138,493 users; 27,278 movies",
            size=198_702_078,
            sha256="96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3",
            md5="cd245b17a1ae2cc31bb14903e1204af3",
        ),
        MovieLensRelease(
            "ml-25m", "csv", _HALF_STARS,
            "25,000,095 ratings by 162,541 users; 62,423 movies",
            size=261_978_986,
            sha256="8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
            md5="6b51fb2759a8657d3bfcbfc42b592ada",
        ),
        MovieLensRelease(
            "ml-32m", "csv", _HALF_STARS,
            "32,000,204 ratings by 200,948 users; 87,585 movies",
            size=238_950_008,
            md5="d472be332d4daa821edc399621853b57",
        ),
        MovieLensRelease(
            "ml-latest", "csv", _HALF_STARS,
            "the full rolling release, rebuilt by GroupLens from time to time (no fixed digest)",
        ),
    )
}


def available() -> list[str]:
    """Names of the MovieLens releases :func:`palate.data.loaders.movielens` can load.

    Examples
    --------
    >>> available()[:3]
    ['ml-latest-small', 'ml-100k', 'ml-1m']
    """
    return list(RELEASES)


def release(name: str) -> MovieLensRelease:
    """The catalogue entry of ``name``; an unknown name raises :class:`ConfigError`."""
    try:
        return RELEASES[name]
    except KeyError:
        raise ConfigError(
            f"unknown MovieLens release {name!r}; choose one of {', '.join(RELEASES)}"
        ) from None


__all__ = [
    "ML100K_GENRES",
    "ML1M_AGE_GROUPS",
    "ML1M_OCCUPATIONS",
    "MovieLensFiles",
    "MovieLensRelease",
    "MovieLensTables",
    "NO_GENRES",
    "RELEASES",
    "REQUIRED_FILES",
    "RATINGS_FILE",
    "available",
    "default_rating_scale",
    "parse_title_year",
    "read_movielens",
    "release",
    "split_genres",
]
