"""palate.datasets (palate.data.loaders, download, movielens): finding, downloading (against a
loopback server) and loading datasets."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import logging
import re
import socket
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from palate import datasets
from palate.datasets import (
    RELEASES,
    Dataset,
    MovieLensDataset,
    available,
    download_movielens,
    find_movielens,
    load_interactions,
    movielens,
)
from palate.errors import ConfigError, DataError, DatasetNotFoundError

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


# ------------------------------------------------------------------------------ tiny copies
def write_small(root: Path) -> Path:
    """A three-rating copy in the ml-latest-small (csv) layout."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "ratings.csv").write_bytes(
        b"userId,movieId,rating,timestamp\r\n1,1,4.0,964982703\r\n1,2,2.5,964981247\r\n"
        b"7,1,5.0,847434962\r\n"
    )
    (root / "movies.csv").write_bytes(
        b"movieId,title,genres\r\n1,Toy Story (1995),Animation|Comedy\r\n"
        b"2,Jumanji (1995),Adventure\r\n3,Heat (1995),(no genres listed)\r\n"
    )
    (root / "README.txt").write_text("tiny copy for tests\n")
    return root


def write_100k(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "u.data").write_text("1\t10\t5\t881250949\n2\t10\t3\t881250950\n")
    flags = "|".join(["0"] * 5 + ["1"] + ["0"] * 13)
    (root / "u.item").write_text(f"10|Toy Story (1995)|01-Jan-1995|||{flags}\n")
    (root / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n")
    return root


def make_zip(directory: Path, archive: Path, folder: str = "ml-latest-small") -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{folder}/", "")
        for file in sorted(directory.iterdir()):
            z.write(file, f"{folder}/{file.name}")
    return archive


def pin(monkeypatch: pytest.MonkeyPatch, name: str, archive: Path | None, **overrides) -> None:
    """Replace the pinned digests of ``name`` by those of ``archive`` (or by ``overrides``)."""
    fields: dict[str, object] = {"size": None, "sha256": None, "md5": None}
    if archive is not None:
        data = archive.read_bytes()
        fields = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                  "md5": hashlib.md5(data).hexdigest()}
    fields.update(overrides)
    monkeypatch.setitem(RELEASES, name, dataclasses.replace(RELEASES[name], **fields))


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Every test gets an empty cache, no PALATE_DATA and no proxy for loopback."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("PALATE_CACHE", str(cache))
    monkeypatch.delenv("PALATE_DATA", raising=False)
    monkeypatch.delenv("PALATE_MOVIELENS_URL", raising=False)
    monkeypatch.setenv("no_proxy", "*")
    return cache


class _Handler(http.server.SimpleHTTPRequestHandler):
    requests: list[str]

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.requests.append(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, list[str]]]:
    """A loopback HTTP server on an ephemeral port: (base URL, served directory, requests)."""
    served = tmp_path / "served"
    served.mkdir()
    requests: list[str] = []
    handler = type("Handler", (_Handler,), {"requests": requests})
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(served))
    )
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/movielens", served, requests
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def serve_small(served: Path, tmp_path: Path) -> Path:
    (served / "movielens").mkdir(exist_ok=True)
    return make_zip(write_small(tmp_path / "src"), served / "movielens" / "ml-latest-small.zip")


def leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


# ------------------------------------------------------------------------------ catalogue
def test_available_lists_the_releases() -> None:
    names = available()
    assert names[0] == "ml-latest-small"
    assert {"ml-100k", "ml-1m", "ml-20m", "ml-25m", "ml-32m", "ml-latest"} <= set(names)
    assert names == list(RELEASES)


def test_pinned_digests_are_well_formed() -> None:
    for name, entry in RELEASES.items():
        assert entry.name == name
        if entry.sha256 is not None:
            assert re.fullmatch(r"[0-9a-f]{64}", entry.sha256), name
        if entry.md5 is not None:
            assert re.fullmatch(r"[0-9a-f]{32}", entry.md5), name
        # every fixed release can be verified; only the rolling one cannot
        assert entry.is_verified == (name != "ml-latest"), name
    for name in ("ml-latest-small", "ml-100k", "ml-1m", "ml-20m", "ml-25m"):
        assert RELEASES[name].sha256 is not None
    assert RELEASES["ml-100k"].rating_scale == (1.0, 5.0)
    assert RELEASES["ml-latest-small"].rating_scale == (0.5, 5.0)


def test_unknown_release_name() -> None:
    with pytest.raises(ConfigError, match="ml-100k"):
        movielens("ml-7")


# ------------------------------------------------------------------------------ dataset object
def test_dataset_repr_describe_summary(tmp_path: Path) -> None:
    data = movielens(path=write_small(tmp_path / "ml-latest-small"))
    assert isinstance(data, MovieLensDataset)
    assert repr(data) == (
        "MovieLensDataset(name='ml-latest-small', ratings=3, users=2, items=2, "
        "density=75.00%, scale=(0.5, 5.0))"
    )
    assert data.density == pytest.approx(3 / 4)
    summary = data.summary()
    assert summary["n_ratings"] == 3 and summary["items_table_rows"] == 3
    assert summary["users_table_rows"] is None
    assert summary["mean_rating"] == pytest.approx((4.0 + 2.5 + 5.0) / 3)
    assert summary["first_timestamp"] == 847434962
    text = data.describe()
    assert "3 explicit, scale 0.5 to 5.0" in text
    assert "2 rated, 3 in the items table" in text
    assert "1996-11-08 to 2000-07-30 (UTC)" in text
    assert "users table: none" in text
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.name = "other"  # type: ignore[misc]


# ------------------------------------------------------------------------------ local copies
def test_path_holding_the_files(tmp_path: Path) -> None:
    data = movielens(path=write_small(tmp_path / "anything"))
    assert data.name == "anything"  # a csv copy under another name keeps that name
    assert data.ratings.rating_scale == (0.5, 5.0)
    assert data.items["genres"].tolist() == [["Animation", "Comedy"], ["Adventure"], []]


def test_path_holding_name_directory(tmp_path: Path) -> None:
    write_small(tmp_path / "ml-latest-small")
    write_100k(tmp_path / "ml-100k")
    data = movielens("ml-100k", path=tmp_path)
    assert data.name == "ml-100k" and data.path == tmp_path / "ml-100k"
    assert data.users is not None and data.users["occupation"].tolist() == ["technician", "other"]
    with pytest.raises(ConfigError, match="several MovieLens releases"):
        movielens(path=tmp_path)


def test_zip_path_and_name_inference(tmp_path: Path) -> None:
    archive = make_zip(write_100k(tmp_path / "src"), tmp_path / "download (1).zip", "ml-100k")
    data = movielens(path=archive)
    assert data.name == "ml-100k"  # told by the layout
    assert data.path == archive
    assert data.ratings.rating_scale == (1.0, 5.0)
    assert len(data.ratings) == 2


def test_name_and_layout_must_agree(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not ml-1m"):
        movielens("ml-1m", path=write_100k(tmp_path / "ml-100k"))


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        movielens(path=tmp_path / "nowhere")
    with pytest.raises(DatasetNotFoundError, match=r"ml-1m/ or ml-1m\.zip"):
        movielens("ml-1m", path=tmp_path)


def test_search_order_palate_data_then_cache(
    tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_small(isolated / "ml-latest-small")
    assert movielens(download=False).path == isolated / "ml-latest-small"
    first, second = tmp_path / "first", tmp_path / "second"
    write_small(second / "ml-latest-small")
    first.mkdir()
    monkeypatch.setenv("PALATE_DATA", f"{first}:{second}")
    assert find_movielens("ml-latest-small") == second / "ml-latest-small"
    make_zip(write_small(tmp_path / "src"), first / "ml-latest-small.zip")
    data = movielens(download=False)
    assert data.path == first / "ml-latest-small.zip" and len(data.ratings) == 3


def test_zip_in_cache_root_is_found(isolated: Path, tmp_path: Path) -> None:
    isolated.mkdir()
    make_zip(write_100k(tmp_path / "src"), isolated / "ml-100k.zip", "ml-100k")
    assert movielens("ml-100k", download=False).path == isolated / "ml-100k.zip"


def test_no_copy_and_no_download(isolated: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as caught:
        movielens("ml-100k", download=False)
    message = str(caught.value)
    assert "\n" not in message
    assert f"put u.data, u.item, u.user in {isolated / 'ml-100k'}/" in message
    assert f"ml-100k.zip in {isolated}/" in message
    assert "--data" in message and "PALATE_DATA" in message


# ------------------------------------------------------------------------------ downloads
def test_download_verifies_and_unpacks(
    server, tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url, served, requests = server
    archive = serve_small(served, tmp_path)
    pin(monkeypatch, "ml-latest-small", archive)
    seen: list[tuple[int, int | None]] = []
    data = movielens(base_url=base_url, progress=lambda done, total: seen.append((done, total)))
    assert requests == ["/movielens/ml-latest-small.zip"]
    assert data.path == isolated / "ml-latest-small"
    assert len(data.ratings) == 3 and data.ratings.users.ids.tolist() == [1, 7]
    # unpacked as the zip unpacks; no zip or temporary file left behind
    assert leftovers(isolated) == ["ml-latest-small"]
    assert sorted(p.name for p in data.path.iterdir()) == ["README.txt", "movies.csv",
                                                           "ratings.csv"]
    assert seen[-1] == (archive.stat().st_size, archive.stat().st_size)
    # the second call reads the cache and does not ask the server again
    assert len(movielens(base_url=base_url).ratings) == 3
    assert len(requests) == 1


def test_download_url_from_environment(
    server, tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url, served, requests = server
    pin(monkeypatch, "ml-latest-small", serve_small(served, tmp_path))
    monkeypatch.setenv("PALATE_MOVIELENS_URL", base_url + "/")
    assert download_movielens("ml-latest-small") == isolated / "ml-latest-small"
    assert requests == ["/movielens/ml-latest-small.zip"]


@pytest.mark.parametrize("field", ["sha256", "md5", "size"])
def test_digest_mismatch_keeps_nothing(
    server, tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch, field: str
) -> None:
    base_url, served, _ = server
    archive = serve_small(served, tmp_path)
    wrong = {"sha256": "0" * 64, "md5": "0" * 32, "size": 12345}[field]
    pin(monkeypatch, "ml-latest-small", archive, **{field: wrong})
    label = {"sha256": "SHA-256", "md5": "MD5", "size": "size"}[field]
    with pytest.raises(DatasetNotFoundError, match=f"has {label} .*nothing was kept"):
        movielens(base_url=base_url)
    assert leftovers(isolated) == []


def test_http_error(server, isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base_url, _, requests = server
    with pytest.raises(DatasetNotFoundError, match="HTTP 404"):
        movielens("ml-100k", base_url=base_url)
    assert requests == ["/movielens/ml-100k.zip"]
    assert leftovers(isolated) == []


def test_offline_message(isolated: Path) -> None:
    with socket.socket() as probe:  # bound, never listening: connections are refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        with pytest.raises(DatasetNotFoundError) as caught:
            movielens("ml-1m", base_url=f"http://127.0.0.1:{port}", timeout=5)
    message = str(caught.value)
    assert "\n" not in message
    assert f"cannot download ml-1m from http://127.0.0.1:{port}/ml-1m.zip" in message
    assert "you may be offline" in message
    assert f"put ratings.dat, movies.dat, users.dat in {isolated / 'ml-1m'}/" in message
    assert "--data PATH / set PALATE_DATA" in message
    assert leftovers(isolated) == []


def test_zip_lacking_files_is_refused(
    server, tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url, served, _ = server
    source = write_small(tmp_path / "src")
    (source / "movies.csv").unlink()
    (served / "movielens").mkdir()
    archive = make_zip(source, served / "movielens" / "ml-latest-small.zip")
    pin(monkeypatch, "ml-latest-small", archive)
    with pytest.raises(DatasetNotFoundError, match=r"lacks movies\.csv"):
        movielens(base_url=base_url)
    assert leftovers(isolated) == []


def test_zip_with_unsafe_member_is_refused(
    server, tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base_url, served, _ = server
    (served / "movielens").mkdir()
    archive = served / "movielens" / "ml-latest-small.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("ml-latest-small/ratings.csv", "userId,movieId,rating,timestamp\n")
        z.writestr("ml-latest-small/../../evil.txt", "owned")
    pin(monkeypatch, "ml-latest-small", archive)
    with pytest.raises(DatasetNotFoundError, match="unsafe member"):
        movielens(base_url=base_url)
    assert leftovers(isolated) == []
    assert not (tmp_path / "evil.txt").exists()


def test_unverified_release_logs_a_warning(
    server, tmp_path: Path, isolated: Path, caplog: pytest.LogCaptureFixture
) -> None:
    base_url, served, _ = server
    (served / "movielens").mkdir()
    make_zip(write_small(tmp_path / "src"), served / "movielens" / "ml-latest.zip", "ml-latest")
    with caplog.at_level(logging.WARNING, logger="palate.data.download"):
        data = movielens("ml-latest", base_url=base_url)
    assert len(data.ratings) == 3
    assert "no pinned digest" in caplog.text


def test_existing_incomplete_cache_directory_is_not_overwritten(isolated: Path) -> None:
    (isolated / "ml-100k").mkdir(parents=True)
    (isolated / "ml-100k" / "notes.txt").write_text("mine")
    with pytest.raises(DatasetNotFoundError, match="exists but lacks u.data"):
        download_movielens("ml-100k", base_url="http://127.0.0.1:9")
    assert (isolated / "ml-100k" / "notes.txt").read_text() == "mine"


# ------------------------------------------------------------------------------ load_interactions
def test_load_interactions_by_name(isolated: Path) -> None:
    write_small(isolated / "ml-latest-small")
    data = load_interactions("ml-latest-small", download=False)
    assert isinstance(data, MovieLensDataset) and data.items is not None


def test_load_interactions_csv_files(tmp_path: Path) -> None:
    plain = tmp_path / "events.csv"
    plain.write_text("user_id,item_id,rating,timestamp\nu1,a,4,10\nu2,a,2,11\nu1,b,5,12\n")
    data = load_interactions(plain)
    assert type(data) is Dataset and data.items is None and data.users is None
    assert data.name == "events" and data.path == plain
    assert data.ratings.kind == "explicit" and data.ratings.rating_scale is None
    assert data.ratings.users.ids.tolist() == ["u1", "u2"]
    assert data.ratings.timestamps.tolist() == [10, 11, 12]

    movielens_style = write_small(tmp_path / "copy") / "ratings.csv"
    data = load_interactions(movielens_style, rating_scale=(0.5, 5.0))
    assert len(data.ratings) == 3 and data.ratings.rating_scale == (0.5, 5.0)
    assert data.ratings.items.ids.tolist() == [1, 2]


def test_load_interactions_without_ratings_is_binary(tmp_path: Path) -> None:
    clicks = tmp_path / "clicks.tsv"
    clicks.write_text("user_id\titem_id\n1\t5\n1\t6\n2\t5\n")
    data = load_interactions(clicks)
    assert data.ratings.kind == "binary" and data.ratings.values.tolist() == [1.0, 1.0, 1.0]


def test_load_interactions_parquet(tmp_path: Path) -> None:
    frame = pd.DataFrame({"user_id": [1, 1, 2], "item_id": [3, 4, 3], "rating": [1.0, 0.0, 1.0]})
    file = tmp_path / "events.parquet"
    frame.to_parquet(file)
    data = load_interactions(file, kind="binary")
    assert data.ratings.kind == "binary" and len(data.ratings) == 3
    folder = tmp_path / "parts"
    folder.mkdir()
    frame.to_parquet(folder / "part-0.parquet")
    assert load_interactions(folder).ratings.shape == (2, 2)


def test_load_interactions_movielens_paths(tmp_path: Path) -> None:
    root = write_100k(tmp_path / "ml-100k")
    assert load_interactions(root).name == "ml-100k"
    archive = make_zip(root, tmp_path / "ml-100k.zip", "ml-100k")
    data = load_interactions(str(archive))
    assert isinstance(data, MovieLensDataset) and data.users is not None


def test_load_interactions_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="neither an existing file"):
        load_interactions("ml-3b")
    bad = tmp_path / "bad.csv"
    bad.write_text("who,what\n1,2\n")
    with pytest.raises(DataError, match="user_id,item_id"):
        load_interactions(bad)
    dupes = tmp_path / "dupes.csv"
    dupes.write_text("user_id,item_id,rating\n1,2,3\n1,2,4\n")
    with pytest.raises(DataError, match="duplicates="):
        load_interactions(dupes)
    assert load_interactions(dupes, duplicates="last").ratings.values.tolist() == [4.0]
    odd = tmp_path / "events.json"
    odd.write_text("{}")
    with pytest.raises(DataError, match="cannot tell the format"):
        load_interactions(odd)


# ------------------------------------------------------------------------------ real data
@pytest.mark.skipif(not (SHARED_DATA / "ml-latest-small" / "ratings.csv").is_file(),
                    reason="shared ml-latest-small copy not present")
def test_real_ml_latest_small_through_palate_data(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PALATE_DATA", str(SHARED_DATA))
    data = datasets.movielens(download=False)
    assert data.name == "ml-latest-small"
    assert len(data.ratings) == 100_836 and data.ratings.shape == (610, 9_724)
    assert len(data.items) == 9_742 and data.users is None
    assert f"{data.density:.4f}" == f"{100_836 / (610 * 9_724):.4f}"
    assert "100,836 explicit, scale 0.5 to 5.0" in data.describe()
