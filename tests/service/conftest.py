"""Small saved models (trained here on synthetic data with titles) and clients for them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the service tests need the 'service' extra")

from fastapi.testclient import TestClient

from palate import EASE, CollaborativeFiltering, ImplicitALS, Popularity, save
from palate.data.synthetic import SyntheticData, synthetic_ratings
from palate.service import create_app

ADMIN_TOKEN = "test-token"


@pytest.fixture(scope="session")
def synthetic() -> SyntheticData:
    """60 users x 40 items, explicit ratings 0.5..5 with titles "Item 0" .. "Item 39"."""
    return synthetic_ratings(n_users=60, n_items=40, n_ratings=900, embedding_size=3, seed=3)


@pytest.fixture(scope="session")
def model_dirs(
    tmp_path_factory: pytest.TempPathFactory, synthetic: SyntheticData
) -> dict[str, Path]:
    """One saved model per kind the service serves."""
    root = tmp_path_factory.mktemp("models")
    data = synthetic.ratings
    binary = data.binarize(3.5)
    positives = binary.subset(binary.values > 0)
    models = {
        "cf": CollaborativeFiltering(embedding_size=4, epochs=5).fit(data),
        "binary": CollaborativeFiltering(kind="binary", embedding_size=4, epochs=5).fit(binary),
        "ials": ImplicitALS(embedding_size=4, epochs=3).fit(positives),
        "ease": EASE(reg=20.0).fit(positives),
        "popularity": Popularity().fit(data),
    }
    return {
        name: save(model, root / name, item_table=synthetic.items) for name, model in models.items()
    }


ClientFactory = Callable[..., TestClient]


@pytest.fixture
def make_client(tmp_path: Path, model_dirs: dict[str, Path]) -> Iterator[ClientFactory]:
    """``make_client("cf")``: a TestClient over that model with a fresh feedback database."""
    clients: list[TestClient] = []

    def make(name: str = "cf", **kwargs: object) -> TestClient:
        kwargs.setdefault("feedback_db", tmp_path / f"feedback-{name}-{len(clients)}.db")
        kwargs.setdefault("admin_token", ADMIN_TOKEN)
        app = create_app(model_dirs[name], **kwargs)  # type: ignore[arg-type]
        client = TestClient(app, base_url="http://localhost")
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.app.state.service.store.close()  # type: ignore[attr-defined]


@pytest.fixture
def client(make_client: ClientFactory) -> TestClient:
    return make_client("cf")
