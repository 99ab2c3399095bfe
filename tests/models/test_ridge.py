"""The ALS half-step: one regularised least-squares solve per row, against NumPy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from palate.models import ridge
from palate.models.ridge import SparseRows, solve_cg, solve_cholesky

#: entries per row: empty rows, rows shorter than d, and rows hundreds of entries long, so
#: rows of very different lengths are solved together
LENGTHS = [0, 1, 2, 3, 5, 0, 8, 13, 40, 120, 7, 300, 1, 0, 64]
N_COLS = 350
D = 4  # three features and a bias column of ones


def problem(seed: int, lengths: list[int] = LENGTHS) -> dict:
    """Random rows (CSR order scrambled through ``perm``), design, targets and weights."""
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(len(lengths)), lengths)
    cols = np.concatenate([rng.choice(N_COLS, n, replace=False) for n in lengths])
    shuffle = rng.permutation(len(rows))  # events arrive in any order
    rows, cols = rows[shuffle], cols[shuffle]
    design = np.hstack([rng.normal(size=(N_COLS, D - 1)), np.ones((N_COLS, 1))])
    targets = rng.normal(size=len(rows)) * 2 + 1
    weights = rng.uniform(0.1, 3.0, size=len(rows))
    return {
        "sparse": SparseRows.from_pairs(rows, cols, len(lengths), N_COLS),
        "rows": rows, "cols": cols, "design": design, "targets": targets, "weights": weights,
    }


def reference(p: dict, reg: np.ndarray, weighted: bool, count_scaled: bool) -> np.ndarray:
    """Per row: θ = (Σ w f fᵀ + Λ s)⁻¹ Σ w t f by numpy.linalg.solve; zeros for empty rows."""
    n_rows = p["sparse"].n_rows
    theta = np.zeros((n_rows, D))
    for r in range(n_rows):
        mine = p["rows"] == r
        if not mine.any():
            continue
        F = p["design"][p["cols"][mine]]
        t = p["targets"][mine]
        w = p["weights"][mine] if weighted else np.ones(mine.sum())
        scale = mine.sum() if count_scaled else 1
        A = F.T @ (w[:, None] * F) + np.diag(reg) * scale
        theta[r] = np.linalg.solve(A, F.T @ (w * t))
    return theta


def csr_order(p: dict, key: str) -> torch.Tensor:
    return torch.as_tensor(p[key][p["sparse"].perm])


REGS = {
    "bias-unregularised": np.array([0.5, 0.5, 0.5, 0.0]),
    "all-regularised": np.array([0.3, 1.0, 2.0, 0.1]),
}


def test_sparse_rows_from_pairs() -> None:
    rows = SparseRows.from_pairs(np.array([2, 0, 2, 1, 0]), np.array([5, 6, 7, 8, 9]), 4, 10)
    assert rows.indptr.tolist() == [0, 2, 3, 5, 5]
    assert rows.counts.tolist() == [2, 1, 2, 0]
    assert rows.n_rows == 4
    # perm maps CSR positions back to the events, in their original order within a row
    assert rows.perm.tolist() == [1, 4, 3, 0, 2]
    assert rows.indices.tolist() == [6, 9, 8, 5, 7]


@pytest.mark.parametrize("reg_name", sorted(REGS))
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("count_scaled", [False, True], ids=["plain-lambda", "count-scaled"])
def test_solve_cholesky_equals_numpy_per_row(
    reg_name: str, weighted: bool, count_scaled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # older versions gather rows in padded blocks: force several blocks where that applies
    if hasattr(ridge, "_BLOCK_ENTRIES"):
        monkeypatch.setattr(ridge, "_BLOCK_ENTRIES", 64)
    p = problem(seed=1)
    reg = REGS[reg_name]
    theta = solve_cholesky(
        p["sparse"], torch.as_tensor(p["design"]), csr_order(p, "targets"), torch.as_tensor(reg),
        csr_order(p, "weights") if weighted else None, count_scaled,
    )
    assert theta.shape == (len(LENGTHS), D)
    assert theta.dtype == torch.float64
    expected = reference(p, reg, weighted, count_scaled)
    np.testing.assert_allclose(theta.numpy(), expected, rtol=1e-9, atol=1e-10)
    empty = np.array(LENGTHS) == 0
    assert not theta.numpy()[empty].any()


def test_solve_cholesky_in_float32() -> None:
    p = problem(seed=2)
    reg = REGS["bias-unregularised"]
    theta = solve_cholesky(
        p["sparse"], torch.as_tensor(p["design"], dtype=torch.float32),
        csr_order(p, "targets").float(), torch.as_tensor(reg, dtype=torch.float32),
    )
    assert theta.dtype == torch.float32
    np.testing.assert_allclose(theta.numpy(), reference(p, reg, False, False), rtol=1e-3,
                               atol=1e-4)


def test_solve_cholesky_of_a_singular_row_satisfies_the_normal_equations() -> None:
    # one entry, no regularisation: A = f fᵀ is singular; any solution must still fit it
    rows = SparseRows.from_pairs(np.array([0, 1, 1]), np.array([0, 0, 1]), 2, 2)
    design = torch.tensor([[2.0, 1.0], [1.0, -1.0]], dtype=torch.float64)
    targets = torch.tensor([3.0, 3.0, 0.0], dtype=torch.float64)
    theta = solve_cholesky(rows, design, targets, torch.zeros(2, dtype=torch.float64))
    assert torch.isfinite(theta).all()
    assert float(design[0] @ theta[0]) == pytest.approx(3.0)  # row 0 fits its single entry
    # row 1 is square and regular: exact interpolation of both entries
    np.testing.assert_allclose(design.numpy() @ theta[1].numpy(), [3.0, 0.0], atol=1e-9)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("count_scaled", [False, True], ids=["plain-lambda", "count-scaled"])
def test_solve_cg_converges_to_the_exact_solution(weighted: bool, count_scaled: bool) -> None:
    p = problem(seed=3)
    reg = REGS["bias-unregularised"]
    initial = torch.as_tensor(np.random.default_rng(0).normal(size=(len(LENGTHS), D)))
    theta = solve_cg(
        p["sparse"], torch.as_tensor(p["design"]), csr_order(p, "targets"), torch.as_tensor(reg),
        initial, csr_order(p, "weights") if weighted else None, count_scaled, steps=3 * D,
    )
    np.testing.assert_allclose(theta.numpy(), reference(p, reg, weighted, count_scaled),
                               rtol=1e-7, atol=1e-8)
    assert not theta.numpy()[np.array(LENGTHS) == 0].any()  # empty rows are zero
    assert initial.abs().sum() > 0  # the warm start was not modified in place into the answer
    assert not torch.equal(initial, theta)


def test_solve_cg_steps_decrease_each_rows_objective() -> None:
    p = problem(seed=4)
    reg = REGS["all-regularised"]
    design = torch.as_tensor(p["design"])
    targets = csr_order(p, "targets")
    start = torch.as_tensor(np.random.default_rng(1).normal(size=(len(LENGTHS), D)))

    def objective(theta: np.ndarray) -> np.ndarray:
        values = np.zeros(len(LENGTHS))
        for r in range(len(LENGTHS)):
            mine = p["rows"] == r
            if mine.any():
                residual = p["design"][p["cols"][mine]] @ theta[r] - p["targets"][mine]
                values[r] = 0.5 * residual @ residual + 0.5 * theta[r] @ (reg * theta[r])
        return values

    exact = objective(reference(p, reg, False, False))
    previous = objective(start.numpy())
    for steps in (1, 2, 3):
        theta = solve_cg(p["sparse"], design, targets, torch.as_tensor(reg), start, steps=steps)
        now = objective(theta.numpy())
        assert np.all(now <= previous + 1e-9)
        assert np.all(now >= exact - 1e-9)
        previous = now
    nonempty = np.array(LENGTHS) > 0
    # one step is not enough to be exact on these rows
    one = objective(solve_cg(p["sparse"], design, targets, torch.as_tensor(reg), start,
                             steps=1).numpy())
    assert np.any(one[nonempty] > exact[nonempty] + 1e-6)
