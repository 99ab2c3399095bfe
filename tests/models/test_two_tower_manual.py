"""The hand-written training step of the two-tower model against autograd: the same loss and
the same gradient of every weight, for every objective and tower shape; the flat parameters
and the flat Adam against ``torch.optim.Adam``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from palate.models.two_tower.losses import binary_loss, ratings_loss
from palate.models.two_tower.manual import (
    FlatAdam,
    FlatParameters,
    ManualTower,
    pair_head,
)
from palate.models.two_tower.towers import Tower, l2_normalise
from palate.models.two_tower.training import (
    Batch,
    LoopSettings,
    batch_loss,
    manual_step,
    tower_inputs,
)

N_USERS, N_ITEMS, DU, DI = 30, 40, 7, 5


def _setting(objective: str, negatives: int = 0, temperature: float = 0.7) -> LoopSettings:
    return LoopSettings(objective, 1, 16, 1e-3, 0.0, temperature, 0.0, None,
                        uniform_negatives=negatives)


def _inputs(seed: int, cold: bool) -> object:
    rng = np.random.default_rng(seed)
    users = rng.normal(size=(N_USERS, DU)).astype(np.float32)
    items = rng.normal(size=(N_ITEMS, DI)).astype(np.float32)
    log_q = np.log(rng.dirichlet(np.ones(N_ITEMS))).astype(np.float32)
    columns = None
    if cold:
        columns = {
            "user": (np.arange(DU) >= DU - 2, rng.normal(size=DU).astype(np.float32)),
            "item": (np.isin(np.arange(DI), [0, 2]), rng.normal(size=DI).astype(np.float32)),
        }
    return tower_inputs(users, items, torch.device("cpu"), log_q, columns)


def _towers(hidden: tuple[tuple[int, ...], tuple[int, ...]], ids: int) -> tuple[Tower, Tower]:
    torch.manual_seed(3)
    return (Tower(DU, hidden[0], 6, N_USERS, ids), Tower(DI, hidden[1], 6, N_ITEMS, ids))


def _gradients(params: list[torch.nn.Parameter]) -> list[torch.Tensor]:
    return [p.grad.detach().clone() for p in params]  # type: ignore[union-attr]


CASES = [
    # objective, hidden sizes (users, items), id embedding size, uniform negatives, dropout
    ("ratings", ((16, 8), (16, 8)), 0, 0, False),
    ("ratings", ((16, 8), (16, 8)), 4, 0, True),
    ("binary", ((12,), (12,)), 0, 0, True),
    ("binary", ((3, 9), (3, 9)), 3, 0, False),
    ("retrieval", ((16,), ()), 4, 0, True),
    ("retrieval", ((16, 8), (16, 8)), 0, 5, True),
]


@pytest.mark.parametrize(("objective", "hidden", "ids", "negatives", "dropout"), CASES)
def test_manual_step_matches_autograd(
    objective: str, hidden: tuple[tuple[int, ...], tuple[int, ...]], ids: int,
    negatives: int, dropout: bool,
) -> None:
    inputs = _inputs(1, dropout)
    settings = _setting(objective, negatives)
    g = torch.Generator().manual_seed(5)
    n = 16
    u = torch.randint(N_USERS, (n,), generator=g)
    i = torch.randint(N_ITEMS, (n,), generator=g)
    t = (torch.rand(n, generator=g) < 0.5).float() if objective == "binary" else (
        torch.rand(n, generator=g) * 2 - 1)
    user_ids = torch.where(torch.rand(n, generator=g) < 0.3, -1, u) if ids else None
    user_drop = torch.rand(n, generator=g) < 0.5 if dropout else None
    item_drop = torch.rand(n, generator=g) < 0.5 if dropout else None
    neg = torch.randint(N_ITEMS, (negatives,), generator=g) if negatives else None
    neg_drop = torch.rand(negatives, generator=g) < 0.5 if negatives and dropout else None
    batch = Batch(u, i, t, user_ids, None, user_drop, item_drop, neg, neg_drop)

    reference = _towers(hidden, ids)
    params = [p for tower in reference for p in tower.parameters()]
    expected_loss = batch_loss(*reference, inputs, batch, settings)
    expected_loss.backward()
    expected = _gradients(params)

    towers = _towers(hidden, ids)
    flat = FlatParameters(towers)
    manual = (ManualTower(towers[0], flat), ManualTower(towers[1], flat))
    with torch.no_grad():
        loss = manual_step(manual, inputs, batch, settings)
    got = _gradients([p for tower in towers for p in tower.parameters()])
    assert float(loss) == pytest.approx(expected_loss.item(), rel=1e-5)
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("objective", ["ratings", "binary"])
def test_pair_head_is_the_normalised_loss_and_its_gradient(objective: str) -> None:
    g = torch.Generator().manual_seed(0)
    o_u, o_m = torch.randn(9, 4, generator=g), torch.randn(9, 4, generator=g) * 3
    t = torch.tensor([1.0, 0, 1, 1, 0, 0, 1, 0, 1]) if objective == "binary" else (
        torch.linspace(-1, 1, 9))
    grad_u, grad_m = torch.empty_like(o_u), torch.empty_like(o_m)
    loss = pair_head(objective, o_u, o_m, t, 0.3, grad_u, grad_m)

    a, b = o_u.double().requires_grad_(), o_m.double().requires_grad_()
    v_u, v_m = l2_normalise(a), l2_normalise(b)
    reference = (ratings_loss(v_u, v_m, t.double()) if objective == "ratings"
                 else binary_loss(v_u, v_m, t.double(), 0.3))
    reference.backward()
    assert loss == pytest.approx(reference.item(), rel=1e-6)
    torch.testing.assert_close(grad_u.double(), a.grad, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(grad_m.double(), b.grad, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="retrieval"):
        pair_head("retrieval", o_u, o_m, t, 0.3, grad_u, grad_m)


def test_flat_parameters_keep_values_names_and_shapes() -> None:
    towers = _towers(((16, 8), (16,)), 4)
    before = {(side, name): value.clone() for side, tower in enumerate(towers)
              for name, value in tower.state_dict().items()}
    flat = FlatParameters(towers).flat
    after = {(side, name): value for side, tower in enumerate(towers)
             for name, value in tower.state_dict().items()}
    assert after.keys() == before.keys()
    for name, value in before.items():
        torch.testing.assert_close(after[name], value, rtol=0, atol=0)
    assert flat.numel() == sum(v.numel() for v in before.values())
    with torch.no_grad():  # one storage: a change to the flat tensor is a change of the weights
        flat.add_(1.0)
    torch.testing.assert_close(towers[0].layers[0].bias, before[0, "layers.0.bias"] + 1.0)
    assert towers[0].layers[0].bias.grad is not None
    assert towers[0].layers[0].bias.grad.data_ptr() != towers[0].layers[0].bias.data_ptr()


def test_flat_adam_is_torch_adam() -> None:
    g = torch.Generator().manual_seed(1)
    start = torch.randn(50, generator=g)
    grads = [torch.randn(50, generator=g) for _ in range(4)]
    reference = torch.nn.Parameter(start.clone())
    optimizer = torch.optim.Adam([reference], lr=0.01, weight_decay=0.1)
    flat = torch.nn.Parameter(start.clone())
    flat.grad = torch.zeros(50)
    adam = FlatAdam(flat, 0.01, 0.1)
    for grad in grads:
        reference.grad = grad.clone()
        optimizer.step()
        flat.grad.copy_(grad)
        adam.step()
    torch.testing.assert_close(flat.data, reference.data, rtol=1e-6, atol=1e-7)


def test_manual_step_without_the_compiled_head_matches_autograd(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # off the CPU the ratings and binary objectives take the autograd head
    from palate.models.two_tower import training

    monkeypatch.setattr(training, "PAIR_OBJECTIVES", ())
    test_manual_step_matches_autograd(*CASES[1])
    test_manual_step_matches_autograd(*CASES[3])


def test_a_manual_tower_needs_its_weights_flattened() -> None:
    users, items = _towers(((8,), (8,)), 0)
    flat = FlatParameters([users])
    ManualTower(users, flat)
    with pytest.raises(ValueError, match="not flattened"):
        ManualTower(items, flat)
