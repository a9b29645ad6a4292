"""The chunked full-softmax cross-entropy equals the dense autograd one, value and gradients."""

import pytest
import torch
import torch.nn.functional as F

from driftrec.models.neural import seen_pairs
from driftrec.models.softmax import CHUNK, softmax_cross_entropy


def _dense(h, table, bias, beta, targets, pair_rows, pair_cols):
    seen = torch.zeros(len(h), len(table))
    seen[pair_rows, pair_cols] = 1.0
    return F.cross_entropy(h @ table.T + bias + beta * seen, targets)


@pytest.mark.parametrize("n", [1, CHUNK, 3 * CHUNK + 5])
def test_matches_dense_cross_entropy_and_its_gradients(n: int) -> None:
    g = torch.Generator().manual_seed(n)
    items, d = 300, 16
    h = torch.randn(n, d, generator=g, requires_grad=True)
    table = torch.randn(items, d, generator=g, requires_grad=True)
    bias = torch.randn(items, generator=g).requires_grad_()
    beta = torch.tensor(0.7, requires_grad=True)
    left_out = torch.zeros(items)
    left_out[[0, 5, 17]] = -torch.inf  # padding and two items out of the softmax
    targets = torch.randint(20, items, (n,), generator=g)
    seen = torch.rand(n, items, generator=g) < 0.05
    seen[torch.arange(n)[::2], targets[::2]] = True  # half the targets were seen before
    pair_rows, pair_cols = seen.nonzero(as_tuple=True)
    inputs = (h, table, bias, beta)
    grads = []
    losses = []
    for loss_fn in (softmax_cross_entropy, _dense):
        loss = loss_fn(h, table, bias + left_out, beta, targets, pair_rows, pair_cols)
        losses.append(loss.detach())
        grads.append(torch.autograd.grad(loss, inputs))
    torch.testing.assert_close(losses[0], losses[1])
    for chunked, dense in zip(*grads, strict=True):
        torch.testing.assert_close(chunked, dense)
    assert grads[0][2][[0, 5, 17]].abs().sum() == 0  # left-out items get no gradient


def test_gradients_only_where_asked() -> None:
    h = torch.randn(10, 4)  # detached, as the cold adapter's term passes it
    table = torch.randn(30, 4, requires_grad=True)
    loss = softmax_cross_entropy(
        h,
        table,
        torch.zeros(30),
        torch.zeros(()),
        torch.randint(1, 30, (10,)),
        torch.zeros(0, dtype=torch.long),
        torch.zeros(0, dtype=torch.long),
    )
    loss.backward()
    assert table.grad is not None and h.grad is None


def test_seen_pairs_are_the_dense_seen_mask() -> None:
    """The repeat bias's pairs mark exactly what the dense mask did: item j at target position
    (r, t) when j occurs in window r at a step <= t, padding never, each pair once."""
    g = torch.Generator().manual_seed(3)
    b, length, items = 7, 9, 12
    windows = torch.randint(1, items, (b, length), generator=g)  # repeats likely
    for r in range(b):  # left padding of random length
        windows[r, : int(torch.randint(0, length, (), generator=g))] = 0
    real = torch.rand(b, length, generator=g) < 0.8
    real &= windows > 0
    pair_rows, pair_cols = seen_pairs(windows, real)
    dense = torch.zeros(int(real.sum()), items, dtype=torch.bool)
    positions = real.nonzero().tolist()
    for n, (r, t) in enumerate(positions):
        for s in range(t + 1):
            if windows[r, s] > 0:
                dense[n, windows[r, s]] = True
    got = torch.zeros_like(dense)
    got[pair_rows, pair_cols] = True
    assert torch.equal(got, dense)
    assert len(pair_rows) == int(dense.sum())  # no pair twice
    assert torch.equal(pair_rows, pair_rows.sort().values)
