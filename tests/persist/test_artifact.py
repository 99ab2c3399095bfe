"""Model files: round trips, integrity checks, atomic replacement, and no pickle."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import palate
from palate.data import Interactions, Vocabulary
from palate.errors import ArtifactError, ConfigError, NotFittedError
from palate.models import registry as model_registry
from palate.models.base import Model, ModelState
from palate.models.popularity import Popularity
from palate.persist import (
    FORMAT_NAME,
    FORMAT_VERSION,
    Artifact,
    atomic,
    load,
    load_artifact,
    read_manifest,
    register_model_kind,
    registry,
    save,
)
from palate.persist import formats as formats_module


# ------------------------------------------------------------------------------ fixtures
def interactions(string_ids: bool = False, shift: float = 0.0) -> Interactions:
    users = [1, 1, 1, 2, 2, 3, 4, 4]
    items = [10, 11, 12, 10, 13, 11, 12, 13]
    ratings = [5.0, 3.0, 4.0, 4.0, 1.0, 2.0, 5.0, 3.0]
    if string_ids:
        users = [f"user-{u}" for u in users]
        items = [f"item-{i}" for i in items]
    frame = pd.DataFrame(
        {"user_id": users, "item_id": items, "rating": [r - shift for r in ratings]}
    )
    return Interactions.from_pandas(frame)


@pytest.fixture(params=[False, True], ids=["int-ids", "str-ids"])
def data(request: pytest.FixtureRequest) -> Interactions:
    return interactions(string_ids=request.param)


@pytest.fixture
def fitted(data: Interactions) -> Popularity:
    return Popularity(by="mean", prior=2.0).fit(data)


@pytest.fixture
def int_model() -> Popularity:
    return Popularity(by="mean", prior=2.0).fit(interactions())


@pytest.fixture
def item_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "item_id": [10, 11, 12, 13],
            "title": ["Alien (1979)", "Heat (1995)", "Up (2009)", "Her (2013)"],
            "genres": [["Horror", "Sci-Fi"], ["Crime"], [], ["Drama", "Romance", "Sci-Fi"]],
            "year": [1979, 1995, 2009, 2013],
        }
    )


@pytest.fixture
def clean_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    # the allow-list is the one table of palate.models.registry
    monkeypatch.setattr(model_registry, "_MODEL_KINDS", dict(model_registry._MODEL_KINDS))


class TinyModel(Model):
    """A test-only model with a boolean mask, a 2-d float array and string ids."""

    model_kind = "tiny-test"

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = scale
        self.users_: Vocabulary | None = None
        self.mask_: np.ndarray | None = None
        self.weights_: np.ndarray | None = None
        self.note_: str = ""

    def get_params(self) -> dict[str, Any]:
        return {"scale": self.scale}

    def build(self) -> TinyModel:
        self.users_ = Vocabulary(["ann", "bob", "cy"])
        self.mask_ = np.array([True, False, True])
        self.weights_ = np.arange(6, dtype=np.float64).reshape(3, 2).T * self.scale
        self.note_ = "hello"
        return self

    def to_state(self) -> ModelState:
        self._check_fitted()
        return ModelState(
            config=self.get_params(),
            arrays={"mask": self.mask_, "weights": self.weights_},  # type: ignore[dict-item]
            vocabularies={"users": self.users_},  # type: ignore[dict-item]
            extra={"note": self.note_},
        )

    @classmethod
    def from_state(cls, state: ModelState) -> TinyModel:
        model = cls(**state.config)
        model.users_ = state.vocabularies["users"]
        model.mask_ = state.arrays["mask"]
        model.weights_ = state.arrays["weights"]
        model.note_ = state.extra["note"]
        if len(model.mask_) != len(model.users_):
            raise ValueError("mask and users disagree")
        return model


@pytest.fixture
def tiny_registered(clean_registry: None) -> None:
    register_model_kind("tiny-test", TinyModel)


def assert_same_predictions(a: Popularity, b: Popularity, data: Interactions) -> None:
    users = np.concatenate([data.users.ids, data.users.ids[:1]])
    unknown_user = "nobody" if not data.users.is_integer else 999
    for exclude_seen in (True, False):
        for k in (1, 3, 10):
            ra = a.recommend(np.append(users, unknown_user), k=k, exclude_seen=exclude_seen)
            rb = b.recommend(np.append(users, unknown_user), k=k, exclude_seen=exclude_seen)
            np.testing.assert_array_equal(ra.user_ids, rb.user_ids)
            np.testing.assert_array_equal(ra.item_ids, rb.item_ids)
            np.testing.assert_array_equal(ra.scores, rb.scores)
            np.testing.assert_array_equal(ra.fallback, rb.fallback)
    pairs_users = np.repeat(data.users.ids, data.n_items)
    pairs_items = np.tile(data.items.ids, data.n_users)
    np.testing.assert_array_equal(
        a.predict(pairs_users, pairs_items), b.predict(pairs_users, pairs_items)
    )


def predictions_of(model: Popularity) -> np.ndarray:
    assert model.items_ is not None
    return model.predict(np.repeat(1, len(model.items_)), model.items_.ids)


def entries(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


# ------------------------------------------------------------------------------ round trips
def test_round_trip_gives_identical_output(
    fitted: Popularity, data: Interactions, tmp_path: Path
) -> None:
    path = save(fitted, tmp_path / "model")
    loaded = load(path)
    assert isinstance(loaded, Popularity)
    assert loaded.get_params() == fitted.get_params()
    assert loaded.users_ == fitted.users_ and loaded.items_ == fitted.items_
    assert loaded.items_ is not None and fitted.items_ is not None
    assert loaded.items_.ids.dtype == fitted.items_.ids.dtype
    assert loaded.items_.ids.tolist() == fitted.items_.ids.tolist()
    assert_same_predictions(fitted, loaded, data)


def test_save_accepts_str_path_and_creates_parents(int_model: Popularity, tmp_path: Path) -> None:
    path = save(int_model, str(tmp_path / "a" / "b" / "model"))
    assert path == tmp_path / "a" / "b" / "model"
    assert isinstance(load(str(path)), Popularity)


def test_item_table_round_trip_keeps_genre_lists(
    int_model: Popularity, item_table: pd.DataFrame, tmp_path: Path
) -> None:
    save(int_model, tmp_path / "model", item_table=item_table)
    loaded = load_artifact(tmp_path / "model")
    assert isinstance(loaded, Artifact)
    assert loaded.path == tmp_path / "model"
    assert loaded.item_table is not None
    assert loaded.item_table["genres"].tolist() == item_table["genres"].tolist()
    assert all(isinstance(cell, list) for cell in loaded.item_table["genres"])
    assert loaded.item_table["title"].tolist() == item_table["title"].tolist()
    assert loaded.item_table["item_id"].tolist() == [10, 11, 12, 13]
    assert loaded.item_table["year"].tolist() == [1979, 1995, 2009, 2013]
    assert loaded.manifest["item_table"]["rows"] == 4


def test_item_table_with_an_index_round_trips(int_model: Popularity, tmp_path: Path) -> None:
    table = pd.DataFrame({"title": ["x", "y"]}, index=pd.Index([10, 11], name="item_id"))
    save(int_model, tmp_path / "model", item_table=table)
    loaded = load_artifact(tmp_path / "model").item_table
    assert loaded is not None
    assert loaded.index.tolist() == [10, 11] and loaded.index.name == "item_id"
    assert loaded["title"].tolist() == ["x", "y"]


def test_without_item_table_the_artifact_has_none(int_model: Popularity, tmp_path: Path) -> None:
    save(int_model, tmp_path / "model")
    assert load_artifact(tmp_path / "model").item_table is None
    assert not (tmp_path / "model" / "items.parquet").exists()


def test_item_table_must_be_a_dataframe(int_model: Popularity, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DataFrame"):
        save(int_model, tmp_path / "model", item_table={"title": ["x"]})  # type: ignore[arg-type]
    assert entries(tmp_path) == []


def test_boolean_and_2d_arrays_and_extra_round_trip(tiny_registered: None, tmp_path: Path) -> None:
    model = TinyModel(scale=2.0).build()
    save(model, tmp_path / "tiny")
    manifest = read_manifest(tmp_path / "tiny")
    assert manifest["arrays"]["tensors"]["mask"] == {
        "dtype": "bool",
        "stored_dtype": "uint8",
        "shape": [3],
    }
    assert manifest["extra"] == {"note": "hello"}
    loaded = load(tmp_path / "tiny")
    assert isinstance(loaded, TinyModel)
    assert loaded.scale == 2.0 and loaded.note_ == "hello"
    assert loaded.mask_ is not None and loaded.mask_.dtype == np.bool_
    np.testing.assert_array_equal(loaded.mask_, model.mask_)
    np.testing.assert_array_equal(loaded.weights_, model.weights_)
    assert loaded.users_ == model.users_


# ------------------------------------------------------------------------------ manifest
def test_manifest_content(int_model: Popularity, item_table: pd.DataFrame, tmp_path: Path) -> None:
    data = interactions()
    path = save(
        int_model,
        tmp_path / "model",
        metrics={"ndcg@10": np.float32(0.25), "users": np.int64(4), "per_k": [0.1, 0.2]},
        item_table=item_table,
        data_fingerprint=data.fingerprint(),
    )
    raw = json.loads((path / "manifest.json").read_text())
    assert read_manifest(path) == raw
    assert raw["format"] == FORMAT_NAME == "palate-model"
    assert raw["format_version"] == FORMAT_VERSION == 1
    assert raw["palate_version"] == palate.__version__
    assert raw["model_kind"] == "popularity"
    assert raw["config"] == {"by": "mean", "prior": 2.0}
    assert raw["metrics"] == {"ndcg@10": 0.25, "users": 4, "per_k": [0.1, 0.2]}
    assert raw["data_fingerprint"] == data.fingerprint()
    assert datetime.fromisoformat(raw["created_at"]).tzinfo is not None
    assert raw["vocabularies"]["users"] == {
        "file": "vocab_users.parquet",
        "id_type": "int64",
        "size": 4,
    }
    assert set(raw["files"]) == {
        "arrays.safetensors",
        "vocab_users.parquet",
        "vocab_items.parquet",
        "items.parquet",
    }
    assert set(os.listdir(path)) == set(raw["files"]) | {"manifest.json"}
    for name, record in raw["files"].items():
        content = (path / name).read_bytes()
        assert record == {"sha256": hashlib.sha256(content).hexdigest(), "bytes": len(content)}


def test_string_vocabularies_are_recorded_as_str(tmp_path: Path) -> None:
    model = Popularity().fit(interactions(string_ids=True))
    manifest = read_manifest(save(model, tmp_path / "model"))
    assert manifest["vocabularies"]["items"]["id_type"] == "str"


def test_data_fingerprint_defaults_to_the_model_attribute(
    int_model: Popularity, tmp_path: Path
) -> None:
    int_model.data_fingerprint_ = "sha256:abc"  # type: ignore[attr-defined]
    save(int_model, tmp_path / "model")
    assert read_manifest(tmp_path / "model")["data_fingerprint"] == "sha256:abc"
    assert load(tmp_path / "model").data_fingerprint_ == "sha256:abc"  # type: ignore[attr-defined]


def test_every_fitted_model_records_the_fingerprint_of_its_data(
    int_model: Popularity, tmp_path: Path
) -> None:
    expected = int_model.data_fingerprint_
    assert expected.startswith("sha256:")
    save(int_model, tmp_path / "model")
    assert read_manifest(tmp_path / "model")["data_fingerprint"] == expected
    assert load(tmp_path / "model").data_fingerprint_ == expected


def test_loaded_model_has_fingerprint_none_when_unknown(
    tiny_registered: None, tmp_path: Path
) -> None:
    save(TinyModel().build(), tmp_path / "model")
    assert load(tmp_path / "model").data_fingerprint_ is None  # type: ignore[attr-defined]


def test_metrics_with_nan_are_refused_and_nothing_is_written(
    int_model: Popularity, tmp_path: Path
) -> None:
    with pytest.raises(ArtifactError, match="None instead of NaN"):
        save(int_model, tmp_path / "model", metrics={"ndcg": float("nan")})
    assert entries(tmp_path) == []


def test_unfitted_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NotFittedError):
        save(Popularity(), tmp_path / "model")
    assert entries(tmp_path) == []


def test_unregistered_model_kind_is_refused_at_save(clean_registry: None, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="register_model_kind"):
        save(TinyModel().build(), tmp_path / "tiny")
    assert entries(tmp_path) == []


# ------------------------------------------------------------------------------ integrity
def test_truncated_arrays_file_is_refused(int_model: Popularity, tmp_path: Path) -> None:
    path = save(int_model, tmp_path / "model")
    content = (path / "arrays.safetensors").read_bytes()
    (path / "arrays.safetensors").write_bytes(content[: len(content) // 2])
    with pytest.raises(ArtifactError, match=r"arrays\.safetensors is \d+ bytes.*truncated"):
        load(path)


def test_one_edited_byte_in_a_parquet_file_is_refused(
    int_model: Popularity, tmp_path: Path
) -> None:
    path = save(int_model, tmp_path / "model")
    content = bytearray((path / "vocab_items.parquet").read_bytes())
    content[len(content) // 2] ^= 0x01
    (path / "vocab_items.parquet").write_bytes(bytes(content))
    with pytest.raises(ArtifactError, match=r"SHA-256 of vocab_items\.parquet"):
        load(path)


def test_swapped_arrays_files_are_refused(tmp_path: Path) -> None:
    first = save(Popularity(by="mean").fit(interactions()), tmp_path / "first")
    second = save(Popularity(by="mean").fit(interactions(shift=1.0)), tmp_path / "second")
    assert (first / "arrays.safetensors").stat().st_size == (
        second / "arrays.safetensors"
    ).stat().st_size
    shutil.copyfile(first / "arrays.safetensors", second / "arrays.safetensors")
    with pytest.raises(ArtifactError, match="edited or swapped"):
        load(second)


def test_missing_file_is_refused(int_model: Popularity, tmp_path: Path) -> None:
    path = save(int_model, tmp_path / "model")
    (path / "vocab_users.parquet").unlink()
    with pytest.raises(ArtifactError, match=r"vocab_users\.parquet is missing"):
        load(path)


def test_item_table_is_verified_even_when_only_the_model_is_loaded(
    int_model: Popularity, item_table: pd.DataFrame, tmp_path: Path
) -> None:
    path = save(int_model, tmp_path / "model", item_table=item_table)
    content = bytearray((path / "items.parquet").read_bytes())
    content[100] ^= 0xFF
    (path / "items.parquet").write_bytes(bytes(content))
    with pytest.raises(ArtifactError, match="items.parquet"):
        load(path)


def edit_manifest(path: Path, **changes: Any) -> None:
    manifest = json.loads((path / "manifest.json").read_text())
    manifest.update(changes)
    (path / "manifest.json").write_text(json.dumps(manifest))


def test_newer_format_version_is_refused(int_model: Popularity, tmp_path: Path) -> None:
    path = save(int_model, tmp_path / "model")
    edit_manifest(path, format_version=99)
    with pytest.raises(ArtifactError, match="newer palate.*upgrade palate"):
        load(path)
    with pytest.raises(ArtifactError, match="format 99"):
        read_manifest(path)


@pytest.mark.parametrize("version", [0, "1", True, None])
def test_invalid_format_version_is_refused(
    int_model: Popularity, tmp_path: Path, version: Any
) -> None:
    path = save(int_model, tmp_path / "model")
    edit_manifest(path, format_version=version)
    with pytest.raises(ArtifactError, match="invalid format_version"):
        load(path)


def test_unknown_format_name_is_refused(int_model: Popularity, tmp_path: Path) -> None:
    path = save(int_model, tmp_path / "model")
    edit_manifest(path, format="something-else")
    with pytest.raises(ArtifactError, match="not a palate model"):
        load(path)


def test_unknown_model_kind_is_refused(int_model: Popularity, tmp_path: Path) -> None:
    path = save(int_model, tmp_path / "model")
    edit_manifest(path, model_kind="os-system")
    with pytest.raises(ArtifactError, match="'os-system' is not one palate can load"):
        load(path)


def test_manifest_that_is_not_json_is_refused(int_model: Popularity, tmp_path: Path) -> None:
    path = save(int_model, tmp_path / "model")
    (path / "manifest.json").write_bytes(b"\x80\x04\x95 not json {")
    with pytest.raises(ArtifactError, match="not valid JSON"):
        load(path)
    (path / "manifest.json").write_text("[1, 2, 3]")
    with pytest.raises(ArtifactError, match="not a JSON object"):
        load(path)


def test_malformed_manifest_field_is_refused(int_model: Popularity, tmp_path: Path) -> None:
    path = save(int_model, tmp_path / "model")
    edit_manifest(path, files=["arrays.safetensors"])
    with pytest.raises(ArtifactError, match="'files' field"):
        load(path)


def test_training_data_is_recorded_and_optional(int_model: Popularity, tmp_path: Path) -> None:
    path = save(int_model, tmp_path / "model", training_data={"name": "ml-100k"})
    assert read_manifest(path)["training_data"] == {"name": "ml-100k"}
    edit_manifest(path, training_data="ml-100k")
    with pytest.raises(ArtifactError, match="'training_data' field"):
        load(path)
    older = save(int_model, tmp_path / "older")  # files written before the field existed
    manifest = json.loads((older / "manifest.json").read_text())
    del manifest["training_data"]
    (older / "manifest.json").write_text(json.dumps(manifest))
    assert load(older).model_kind == int_model.model_kind
    with pytest.raises(ConfigError, match="training_data must be a dict"):
        save(int_model, tmp_path / "bad", training_data=["ml-100k"])  # type: ignore[arg-type]


def test_file_names_outside_the_directory_are_refused(
    int_model: Popularity, tmp_path: Path
) -> None:
    path = save(int_model, tmp_path / "model")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["files"]["../secret"] = {"sha256": "0" * 64, "bytes": 1}
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="invalid file name '../secret'"):
        load(path)


def test_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no model directory"):
        load(tmp_path / "nothing-here")


def test_directory_without_manifest_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    with pytest.raises(ArtifactError, match="no manifest.json"):
        load(tmp_path / "model")


def test_file_instead_of_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "model").write_text("hello")
    with pytest.raises(ArtifactError, match="is a file"):
        load(tmp_path / "model")


def test_invalid_config_in_manifest_is_wrapped(int_model: Popularity, tmp_path: Path) -> None:
    path = save(int_model, tmp_path / "model")
    edit_manifest(path, config={"by": "bogus", "prior": 2.0})
    with pytest.raises(ArtifactError, match="could not rebuild the popularity model"):
        load(path)


def test_exception_while_rebuilding_is_wrapped(tiny_registered: None, tmp_path: Path) -> None:
    path = save(TinyModel().build(), tmp_path / "tiny")
    manifest = read_manifest(path)
    # a consistent set of files whose mask no longer fits the vocabulary
    mask_bytes = formats_module.safetensors_numpy.save(
        {"mask": np.array([1, 0], dtype=np.uint8), "weights": np.zeros((2, 3))}
    )
    (path / "arrays.safetensors").write_bytes(mask_bytes)
    manifest["arrays"]["tensors"]["mask"]["shape"] = [2]
    manifest["files"]["arrays.safetensors"] = {
        "sha256": hashlib.sha256(mask_bytes).hexdigest(),
        "bytes": len(mask_bytes),
    }
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="ValueError: mask and users disagree"):
        load(path)


def test_arrays_not_matching_the_manifest_are_refused(
    int_model: Popularity, tmp_path: Path
) -> None:
    path = save(int_model, tmp_path / "model")
    manifest = read_manifest(path)
    manifest["arrays"]["tensors"]["item_scores"]["shape"] = [99]
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="'item_scores' does not match"):
        load(path)


# ------------------------------------------------------------------------------ overwriting
def test_save_onto_existing_model_without_overwrite_is_refused(tmp_path: Path) -> None:
    old = Popularity(by="mean").fit(interactions())
    new = Popularity(by="mean").fit(interactions(shift=1.0))
    save(old, tmp_path / "model")
    with pytest.raises(ArtifactError, match="overwrite=True"):
        save(new, tmp_path / "model")
    np.testing.assert_array_equal(predictions_of(load(tmp_path / "model")), predictions_of(old))
    assert entries(tmp_path) == ["model"]


@pytest.mark.parametrize("exchange_supported", [True, False], ids=["exchange", "rename-aside"])
def test_save_with_overwrite_replaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exchange_supported: bool
) -> None:
    if not exchange_supported:
        monkeypatch.setattr(atomic, "exchange", lambda first, second: False)
    old = Popularity(by="mean").fit(interactions())
    new = Popularity(by="mean").fit(interactions(shift=1.0))
    save(old, tmp_path / "model", metrics={"version": 1})
    save(new, tmp_path / "model", overwrite=True, metrics={"version": 2})
    assert read_manifest(tmp_path / "model")["metrics"] == {"version": 2}
    np.testing.assert_array_equal(predictions_of(load(tmp_path / "model")), predictions_of(new))
    assert not np.array_equal(predictions_of(old), predictions_of(new))
    assert entries(tmp_path) == ["model"]


def test_save_into_an_existing_empty_directory(int_model: Popularity, tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    save(int_model, tmp_path / "model")
    assert isinstance(load(tmp_path / "model"), Popularity)
    assert entries(tmp_path) == ["model"]


def test_crash_in_the_array_writer_leaves_the_old_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = Popularity(by="mean").fit(interactions())
    save(old, tmp_path / "model")

    def broken_writer(*args: Any, **kwargs: Any) -> bytes:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(formats_module.safetensors_numpy, "save", broken_writer)
    new = Popularity(by="mean").fit(interactions(shift=1.0))
    with pytest.raises(ArtifactError, match="disk on fire"):
        save(new, tmp_path / "model", overwrite=True)
    np.testing.assert_array_equal(predictions_of(load(tmp_path / "model")), predictions_of(old))
    assert entries(tmp_path) == ["model"]


def test_crash_while_writing_files_leaves_the_old_model_and_no_temp_dirs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = Popularity(by="mean").fit(interactions())
    save(old, tmp_path / "model")
    real_write = atomic.write_file
    calls: list[Path] = []

    def failing_write(path: Path, data: bytes) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_write(path, data)

    monkeypatch.setattr(atomic, "write_file", failing_write)
    with pytest.raises(ArtifactError, match="No space left"):
        save(Popularity().fit(interactions(shift=1.0)), tmp_path / "model", overwrite=True)
    assert len(calls) == 2 and calls[0].parent.name.startswith(".model.palate-tmp-")
    np.testing.assert_array_equal(predictions_of(load(tmp_path / "model")), predictions_of(old))
    assert entries(tmp_path) == ["model"]


def test_crash_while_renaming_in_restores_the_old_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = Popularity(by="mean").fit(interactions())
    save(old, tmp_path / "model")
    monkeypatch.setattr(atomic, "exchange", lambda first, second: False)
    real_rename = os.rename

    def rename(source: Any, target: Any) -> None:
        if Path(source).name.startswith(".model.palate-tmp-"):
            raise OSError(5, "Input/output error")
        real_rename(source, target)

    monkeypatch.setattr(atomic.os, "rename", rename)
    with pytest.raises(ArtifactError, match="Input/output error"):
        save(Popularity().fit(interactions(shift=1.0)), tmp_path / "model", overwrite=True)
    monkeypatch.undo()
    np.testing.assert_array_equal(predictions_of(load(tmp_path / "model")), predictions_of(old))
    assert entries(tmp_path) == ["model"]


def test_refuses_to_overwrite_a_directory_that_is_not_a_model(
    int_model: Popularity, tmp_path: Path
) -> None:
    target = tmp_path / "thesis"
    target.mkdir()
    (target / "chapter1.tex").write_text("precious")
    for overwrite in (False, True):
        with pytest.raises(ArtifactError, match="does not hold a palate model"):
            save(int_model, target, overwrite=overwrite)
    assert (target / "chapter1.tex").read_text() == "precious"
    assert entries(tmp_path) == ["thesis"]


def test_refuses_to_overwrite_a_directory_with_a_foreign_manifest(
    int_model: Popularity, tmp_path: Path
) -> None:
    target = tmp_path / "other"
    target.mkdir()
    (target / "manifest.json").write_text('{"format": "someone-else"}')
    with pytest.raises(ArtifactError, match="does not hold a palate model"):
        save(int_model, target, overwrite=True)
    assert (target / "manifest.json").exists()


def test_refuses_to_overwrite_a_file(int_model: Popularity, tmp_path: Path) -> None:
    target = tmp_path / "model"
    target.write_text("not a model")
    with pytest.raises(ArtifactError, match="is a file"):
        save(int_model, target, overwrite=True)
    assert target.read_text() == "not a model"


def test_refuses_to_save_through_a_symbolic_link(int_model: Popularity, tmp_path: Path) -> None:
    real = save(int_model, tmp_path / "real")
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    with pytest.raises(ArtifactError, match="symbolic link"):
        save(int_model, tmp_path / "link", overwrite=True)
    assert (tmp_path / "link").is_symlink()
    assert isinstance(load(tmp_path / "link"), Popularity)


def test_kept_aside_if_the_replaced_directory_is_not_a_model(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir()
    (target / "data.txt").write_text("keep me")
    source = tmp_path / "source"
    source.mkdir()
    atomic.replace_existing(source, target, may_delete=lambda old: False)
    kept = [name for name in entries(tmp_path) if name != "target"]
    assert len(kept) == 1
    assert (tmp_path / kept[0] / "data.txt").read_text() == "keep me"


# ------------------------------------------------------------------------------ no pickle
def test_loading_never_unpickles(
    int_model: Popularity, item_table: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save(int_model, tmp_path / "model", item_table=item_table)

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("pickle was used")

    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    loaded = load_artifact(tmp_path / "model")
    assert isinstance(loaded.model, Popularity)
    assert loaded.item_table is not None and len(loaded.item_table) == 4


# ------------------------------------------------------------------------------ registry
def test_register_model_kind_by_string(clean_registry: None, tmp_path: Path) -> None:
    register_model_kind("tiny-test", f"{TinyModel.__module__}:TinyModel")
    save(TinyModel().build(), tmp_path / "tiny")
    assert isinstance(load(tmp_path / "tiny"), TinyModel)


def test_register_model_kind_validates(clean_registry: None) -> None:
    with pytest.raises(ConfigError, match="not valid"):
        register_model_kind("Bad Kind!", TinyModel)
    with pytest.raises(ConfigError, match="not valid"):
        register_model_kind("tiny-test", "no_colon_here")
    with pytest.raises(ConfigError, match="does not subclass"):
        register_model_kind("tiny-test", dict)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="replace=True"):
        register_model_kind("popularity", TinyModel)
    register_model_kind("popularity", "palate.models.popularity:Popularity")  # same: no error
    assert registry.registered_model_kinds()["popularity"].endswith(":Popularity")


def test_registered_class_must_agree_on_kind(
    clean_registry: None, int_model: Popularity, tmp_path: Path
) -> None:
    save(int_model, tmp_path / "model")
    register_model_kind("popularity", TinyModel, replace=True)
    with pytest.raises(ArtifactError, match="model_kind is 'tiny-test'"):
        load(tmp_path / "model")


def test_unimportable_registration_is_an_artifact_error(
    clean_registry: None, int_model: Popularity, tmp_path: Path
) -> None:
    save(int_model, tmp_path / "model")
    register_model_kind("popularity", "palate.no_such_module:Popularity", replace=True)
    with pytest.raises(ArtifactError, match="cannot be imported"):
        load(tmp_path / "model")
