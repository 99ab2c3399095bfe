"""The MovieLens releases palate knows, with the digests their downloads must match.

Digests of the GroupLens zips (https://files.grouplens.org/datasets/movielens/<name>.zip):

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
"""

from __future__ import annotations

from dataclasses import dataclass

from palate.data.movielens import REQUIRED_FILES, Layout


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
    """Names of the MovieLens releases :func:`palate.datasets.movielens` can load.

    Examples
    --------
    >>> available()[:3]
    ['ml-latest-small', 'ml-100k', 'ml-1m']
    """
    return list(RELEASES)


__all__ = ["RELEASES", "MovieLensRelease", "available"]
