"""The one registry of models: names and aliases to classes, options to constructor arguments,
and the same allow-list of model kinds that model files are loaded through."""

from __future__ import annotations

from enum import StrEnum

import pytest

from palate import (
    EASE,
    CollaborativeFiltering,
    HybridRecommender,
    ImplicitALS,
    Interactions,
    Popularity,
    TopNBlend,
    TwoTower,
)
from palate.errors import ArtifactError, ConfigError, MissingDependencyError
from palate.models import registry
from palate.models.base import Model
from palate.models.registry import (
    ENGAGEMENT_EVENTS,
    EXPLICIT_RATINGS,
    build_model,
    model_class,
    model_names,
    model_spec,
    model_specs,
)
from palate.persist import registry as persist_registry

CLASSES: dict[str, type[Model]] = {
    "cf": CollaborativeFiltering,
    "collaborative": CollaborativeFiltering,
    "ials": ImplicitALS,
    "implicit_als": ImplicitALS,
    "ease": EASE,
    "two-tower": TwoTower,
    "two_tower": TwoTower,
    "hybrid": HybridRecommender,
    "blend": TopNBlend,
    "topn-blend": TopNBlend,
    "topn_blend": TopNBlend,
    "popularity": Popularity,
}


def test_the_command_line_names_in_help_order() -> None:
    assert model_names() == (
        "cf", "bayes", "ials", "ease", "blend", "two-tower", "hybrid", "popularity"
    )
    assert [spec.name for spec in model_specs()] == list(model_names())


@pytest.mark.parametrize("name", list(CLASSES))
def test_every_name_and_alias_builds_its_class(name: str) -> None:
    assert model_class(name) is CLASSES[name]
    model = build_model(name)
    assert type(model) is CLASSES[name]
    assert not model.is_fitted


@pytest.mark.parametrize(("alias", "name"), [("collaborative", "cf"), ("implicit_als", "ials"),
                                             ("two_tower", "two-tower")])
def test_aliases_are_the_same_spec(alias: str, name: str) -> None:
    assert model_spec(alias) is model_spec(name)


@pytest.mark.parametrize("spec", model_specs(), ids=lambda spec: spec.name)
def test_every_spec_is_in_the_allow_list_of_model_files(spec: registry.ModelSpec) -> None:
    assert spec.model_class().model_kind == spec.model_kind
    assert persist_registry.resolve_model_class(spec.model_kind) is spec.model_class()
    assert model_spec(spec.model_kind) is spec


def test_unknown_name_lists_the_known_names() -> None:
    with pytest.raises(ConfigError, match="unknown model 'deep'") as error:
        build_model("deep")
    for name in model_names():
        assert name in str(error.value)


@pytest.mark.parametrize(
    ("name", "kind", "argument", "value"),
    [
        ("cf", "explicit", "kind", "explicit"),
        ("cf", "binary", "kind", "binary"),
        ("cf", "positive", "kind", "binary"),
        ("two-tower", "explicit", "objective", "ratings"),
        ("two-tower", "binary", "objective", "binary"),
        ("two-tower", "positive", "objective", "retrieval"),
        ("popularity", "explicit", "by", "mean"),
        ("popularity", "binary", "by", "count"),
        ("popularity", "positive", "by", "count"),
    ],
)
def test_the_kind_of_data_sets_its_argument(
    name: str, kind: str, argument: str, value: str
) -> None:
    assert build_model(name, kind).get_params()[argument] == value


@pytest.mark.parametrize("name", ["ials", "ease"])
def test_engagement_models_refuse_explicit_ratings(name: str) -> None:
    spec = model_spec(name)
    assert spec.engagement_only and spec.trains_on == (ENGAGEMENT_EVENTS,)
    assert type(build_model(name, "binary")) is CLASSES[name]
    assert type(build_model(name, "positive")) is CLASSES[name]
    with pytest.raises(ConfigError, match=f"'{name}' trains on engagement events, not explicit"):
        build_model(name, "explicit")


def test_what_each_model_trains_on() -> None:
    for name in ("cf", "two-tower", "popularity"):
        assert model_spec(name).trains_on == (EXPLICIT_RATINGS, ENGAGEMENT_EVENTS)
        assert not model_spec(name).engagement_only


def test_positive_only_events_pick_the_dedicated_objective() -> None:
    assert model_spec("two-tower").data_kind("binary", positive_only=True) == "positive"
    assert model_spec("two-tower").data_kind("binary") == "binary"
    assert model_spec("cf").data_kind("binary", positive_only=True) == "binary"
    assert model_spec("cf").data_kind("explicit", positive_only=True) == "explicit"


class Solver(StrEnum):
    adam = "adam"


def test_options_become_constructor_arguments() -> None:
    model = build_model("cf", "explicit", solver=Solver.adam, embedding_size=4, reg=0.5,
                        epochs=3, learning_rate=0.05, batch_size=16, seed=7)
    params = model.get_params()
    assert params["solver"] == "adam" and type(params["solver"]) is str  # the enum's value
    assert (params["embedding_size"], params["reg"], params["epochs"]) == (4, 0.5, 3)
    assert (params["learning_rate"], params["batch_size"], params["seed"]) == (0.05, 16, 7)
    tower = build_model("two-tower", "binary", embedding_size=4, epochs=2, compile=True)
    assert (tower.config.embedding_size, tower.config.epochs, tower.config.compile) == (4, 2, True)
    assert build_model("ials", "binary", embedding_size=5, reg=2.0).config.embedding_size == 5
    assert build_model("ease", reg=20.0).config.reg == 20.0


def test_none_options_keep_the_defaults() -> None:
    default = CollaborativeFiltering().get_params()
    assert build_model("cf", "explicit", reg=None, epochs=None, solver=None).get_params() == default
    # what palate train passes to a model that takes none of them
    assert build_model("popularity", "explicit", embedding_size=None, reg=None, epochs=None,
                       learning_rate=None, batch_size=None, solver=None, compile=None,
                       seed=0).get_params() == Popularity(by="mean").get_params()


def test_deterministic_models_accept_a_seed_and_ignore_it() -> None:
    assert build_model("ease", "binary", seed=3).get_params() == EASE().get_params()
    assert build_model("popularity", seed=3).get_params() == Popularity().get_params()


@pytest.mark.parametrize(
    ("name", "option", "fragments"),
    [
        ("cf", "compile", ["--compile does not apply to --model cf",
                           "--compile applies to --model two-tower only"]),
        ("ials", "learning_rate", ["--learning-rate does not apply to --model ials",
                                   "it takes --embedding-size, --reg, --epochs, --seed",
                                   "applies to --model cf, two-tower, hybrid only"]),
        ("ease", "epochs", ["--epochs does not apply to --model ease", "it takes --reg"]),
        ("popularity", "reg", ["--reg does not apply to --model popularity",
                               "it takes none of the model options"]),
        ("cf", "frobnicate", ["--frobnicate does not apply to --model cf",
                              "no model takes --frobnicate"]),
    ],
)
def test_an_option_a_model_does_not_take_is_refused_by_name(
    name: str, option: str, fragments: list[str]
) -> None:
    with pytest.raises(ConfigError) as error:
        build_model(name, "binary", **{option: 1})
    for fragment in fragments:
        assert fragment in str(error.value)


def test_option_values_are_validated_by_the_model() -> None:
    with pytest.raises(ConfigError, match="embedding_size"):
        build_model("cf", "explicit", embedding_size=0)


def test_how_each_model_is_fitted(tiny_explicit: Interactions) -> None:
    assert model_spec("cf").fit_inputs == {"callback", "validation"}
    assert model_spec("ials").fit_inputs == {"callback"}
    assert model_spec("ease").fit_inputs == frozenset()
    assert model_spec("popularity").fit_inputs == frozenset()
    assert model_spec("two-tower").fit_inputs == {"callback", "validation", "features"}
    spec = model_spec("cf")
    assert spec.fit_params(callback=print, validation=tiny_explicit, item_features={}) == {
        "callback": print, "validation": tiny_explicit
    }
    assert model_spec("ease").fit_params(callback=print, validation=tiny_explicit) == {}
    assert model_spec("two-tower").fit_params(user_features=None, item_features={}) == {
        "item_features": {}
    }
    epochs: list[int] = []
    model = build_model("cf", "explicit", epochs=3, embedding_size=2)
    assert spec.epochs(model) == 3
    model.fit(tiny_explicit, **spec.fit_params(callback=lambda epoch, _: epochs.append(epoch)))
    assert epochs == [1, 2, 3]
    assert model_spec("ease").epochs(EASE()) is None
    assert model_spec("ials").epochs(ImplicitALS(epochs=4)) == 4


def test_a_registered_kind_is_known_to_model_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_MODEL_KINDS", dict(registry._MODEL_KINDS))
    persist_registry.register_model_kind("my-popularity", "palate.models.popularity:Popularity")
    assert registry.is_registered("my-popularity")
    assert persist_registry.registered_model_kinds() == registry.registered_model_kinds()
    # the class named must say it is of that kind
    with pytest.raises(ArtifactError, match="model_kind is 'popularity'"):
        persist_registry.resolve_model_class("my-popularity")
    with pytest.raises(ConfigError, match="model_kind is 'popularity'"):
        registry.kind_class("my-popularity")
    with pytest.raises(ArtifactError, match="register_model_kind"):
        persist_registry.resolve_model_class("nobody")


def test_a_kind_whose_module_is_missing_is_a_missing_dependency(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(registry, "_MODEL_KINDS", dict(registry._MODEL_KINDS))
    registry.register_model_kind("elsewhere", "palate_no_such_package.models:Elsewhere")
    with pytest.raises(MissingDependencyError, match="cannot be imported"):
        registry.kind_class("elsewhere")
    with pytest.raises(ArtifactError, match="cannot be imported"):
        persist_registry.resolve_model_class("elsewhere")


class MyPopularity(Popularity):
    """A user's own model re-registered under a built-in kind."""

    model_kind = "popularity"


def test_re_pointing_a_kind_re_points_the_command_line_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(registry, "_MODEL_KINDS", dict(registry._MODEL_KINDS))
    persist_registry.register_model_kind("popularity", MyPopularity, replace=True)
    assert type(build_model("popularity", "explicit")) is MyPopularity
    assert persist_registry.resolve_model_class("popularity") is MyPopularity


def test_hybrid_options_set_its_rating_model() -> None:
    model = build_model("hybrid", "explicit", embedding_size=7, epochs=2, seed=5)
    assert isinstance(model, HybridRecommender)
    assert model.rating.get_params()["embedding_size"] == 7
    assert model.rating.get_params()["epochs"] == 2 and model.rating.get_params()["seed"] == 5
    assert model.get_params()["rating"]["kind"] == "collaborative"
    with pytest.raises(ConfigError, match="trains on explicit ratings"):
        build_model("hybrid", "binary")


def test_blend_options_set_its_factor_model() -> None:
    model = build_model("blend", "binary", embedding_size=7, epochs=2, seed=5)
    assert isinstance(model, TopNBlend)
    params = model.factor_model.get_params()
    assert (params["embedding_size"], params["epochs"], params["seed"]) == (7, 2, 5)
    assert model.get_params()["item_model"]["kind"] == "ease"
    with pytest.raises(ConfigError, match="engagement events"):
        build_model("blend", "explicit")


def test_which_models_stop_early_on_the_validation_events_fit_gets() -> None:
    from palate import EASE, CollaborativeFiltering, TwoTower
    from palate.models.registry import model_spec

    assert model_spec("two-tower").stops_early(TwoTower())
    assert not model_spec("two-tower").stops_early(TwoTower(early_stopping=None))
    assert not model_spec("cf").stops_early(CollaborativeFiltering())
    assert model_spec("cf").stops_early(CollaborativeFiltering(early_stopping=2))
    assert not model_spec("ease").stops_early(EASE())


def test_the_textbook_preset_is_the_curriculums_cost() -> None:
    from palate.errors import ConfigError
    from palate.models.registry import TEXTBOOK, model_spec

    model = model_spec("cf").build("explicit", **model_spec("cf").preset("textbook"))
    assert {key: model.get_params()[key] for key in TEXTBOOK} == dict(TEXTBOOK)
    with pytest.raises(ConfigError, match="applies to --model cf"):
        model_spec("ials").preset("textbook")
