import math

import pytest
import torch

from aigc_course import seed_everything
from aigc_course.training import NonFiniteLossError, fit, run_steps


def _train(seed):
    gen = seed_everything(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = torch.randn(64, 4, generator=gen)
    y = x.sum(1, keepdim=True)

    def loss_fn(m, step):
        idx = torch.randint(64, (16,), generator=gen)
        return torch.nn.functional.mse_loss(m(x[idx]), y[idx])

    history = fit(model, opt, loss_fn, 50, progress=False)
    return history, model


def test_fit_is_bit_for_bit_repeatable_on_cpu():
    h1, m1 = _train(0)
    h2, m2 = _train(0)
    assert h1.loss == h2.loss
    for a, b in zip(m1.parameters(), m2.parameters(), strict=True):
        assert torch.equal(a, b)


def test_fit_learns():
    history, _ = _train(1)
    assert sum(history.loss[-10:]) < sum(history.loss[:10]) / 2


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_loss_names_the_step(bad):
    def step_fn(step):
        return bad if step == 3 else 1.0

    with pytest.raises(NonFiniteLossError, match=r"loss became (nan|inf) at step 3 of 'demo'"):
        run_steps(step_fn, 10, desc="demo", progress=False)


def test_non_finite_loss_does_not_update_weights():
    model = torch.nn.Linear(2, 1)
    before = [p.clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    with pytest.raises(NonFiniteLossError, match="step 0"):
        fit(model, opt, lambda m, s: m(torch.ones(1, 2)).sum() * math.nan, 5, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_dict_losses_are_recorded_by_name():
    h = run_steps(lambda s: {"d_loss": torch.tensor(1.0 + s), "g_loss": 2.0}, 3, progress=False)
    assert h["d_loss"] == [1.0, 2.0, 3.0] and h["g_loss"] == [2.0] * 3
    assert h.loss == [1.0, 2.0, 3.0]


def test_history_continues_step_count():
    h = run_steps(lambda s: 1.0, 5, progress=False)
    with pytest.raises(NonFiniteLossError, match="at step 6"):
        run_steps(lambda s: math.nan if s == 1 else 1.0, 3, progress=False, history=h)


def test_num_steps_validated():
    with pytest.raises(ValueError, match="num_steps must be a non-negative int"):
        run_steps(lambda s: 0.0, -1)
