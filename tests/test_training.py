"""The training toolkit: loops, schedules, EMA, and the guard that stops a bad update.

The schedule, EMA and update tests keep the formulas of the copies the toolkit replaced
(alignment/sft.py, the training scripts, the four-routes benchmark, the GAN trainer) as
reference expressions, so the shipped checkpoints stay reproducible by their scripts.
"""

import copy
import math

import pytest
import torch

from aigc_course import seed_everything
from aigc_course.training import (
    EMA,
    History,
    NonFiniteLossError,
    fit,
    linear_decay,
    linear_decay_scheduler,
    optimizer_step,
    run_steps,
    warmup_cosine,
    warmup_cosine_scheduler,
)


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


def test_a_failed_step_records_none_of_its_values():
    h = run_steps(lambda s: {"a": 1.0, "b": 2.0}, 2, progress=False)
    with pytest.raises(NonFiniteLossError, match="b became nan at step 3"):
        run_steps(lambda s: {"a": 1.0, "b": math.nan if s == 1 else 2.0}, 3, progress=False, history=h)
    assert len(h["a"]) == len(h["b"]) == 3


def test_num_steps_validated():
    with pytest.raises(ValueError, match="num_steps must be a non-negative int"):
        run_steps(lambda s: 0.0, -1)
    with pytest.raises(ValueError, match="num_steps must be a non-negative int"):
        run_steps(lambda s: 0.0, True)


# ----------------------------------------------------------------------------- schedules
# The formulas exactly as the replaced copies wrote them.


def old_alignment_lr(step, steps, lr, warmup):  # alignment/sft.py `_lr`; scripts/train_code_gpt.py `lr_at`
    if step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def old_diffusion_factor(warmup, total):  # scripts/train_diffusion.py `lr_lambda`
    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def old_pixel_gpt_factor(step, warmup, total):  # scripts/train_pixel_gpt.py `lr_factor`
    if step < warmup:
        return (step + 1) / warmup
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def old_four_routes_factor(steps, warmup=100):  # benchmarks/bench_four_routes.py `lr_cosine`
    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup)))

    return factor


def _old(factor):
    """An old copy's factor as the scheduler the scripts built from it."""
    return lambda opt: torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _lr_curve(make_scheduler, steps, base_lr=1.0):
    """The learning rate at every step of a run under ``make_scheduler(optimizer)``."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base_lr)
    sched = make_scheduler(opt)
    curve = []
    for _ in range(steps):
        curve.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return curve


@pytest.mark.parametrize("lr, warmup, steps", [
    (3e-3, 50, 3000),  # tiny-chat-base (pretrain)
    (2e-3, 50, 3000),  # tiny-chat-sft
    (5e-4, 20, 2000),  # tiny-chat-reward
    (1e-4, 10, 200),  # tiny-chat-dpo
    (3e-3, 50, 1000),  # code-gpt
    (2e-3, 5, 40), (3e-3, 10, 40), (5e-4, 5, 40), (3e-4, 5, 20),  # the chapter 3.1.4 notebooks
    (1e-3, 20, 10),  # warm-up longer than the run
])
def test_warmup_cosine_equals_the_alignment_and_code_gpt_formula_at_every_step(lr, warmup, steps):
    for step in range(steps + 1):
        assert warmup_cosine(step, steps, warmup, floor=0.1, peak=lr) == old_alignment_lr(step, steps, lr, warmup)


@pytest.mark.parametrize("lr, warmup, steps", [(2e-3, 200, 6000), (2e-3, 100, 2000)])  # digits-ddpm, grid-ddpm
def test_warmup_cosine_scheduler_equals_the_diffusion_script_at_every_step(lr, warmup, steps):
    old = _lr_curve(_old(old_diffusion_factor(warmup, steps)), steps, lr)
    new = _lr_curve(lambda opt: warmup_cosine_scheduler(opt, steps, warmup, floor=0.05), steps, lr)
    assert new == old


def _adamw_run(make_scheduler, steps, lr, weight_decay):
    """Weights after ``steps`` AdamW updates on fixed random gradients under the schedule."""
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(32))
    opt = torch.optim.AdamW([w], lr=lr, weight_decay=weight_decay)
    sched = make_scheduler(opt)
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        w.grad = torch.randn(32, generator=g)
        opt.step()
        sched.step()
    return w.detach()


@pytest.mark.parametrize("name, old, new, steps, lr, weight_decay", [
    ("digits-pixel-gpt", _old(lambda s: old_pixel_gpt_factor(s, 100, 1600)),
     lambda opt: warmup_cosine_scheduler(opt, 1600, 100, floor=0.05), 1600, 2e-3, 0.05),
    ("four routes, benchmark", _old(old_four_routes_factor(3000)),
     lambda opt: warmup_cosine_scheduler(opt, 3000, 100, floor=0.02), 3000, 2e-3, 0.0),
    ("four routes, page", _old(old_four_routes_factor(400)),
     lambda opt: warmup_cosine_scheduler(opt, 400, 100, floor=0.02), 400, 1e-3, 0.0),
])
def test_copies_that_wrote_pi_times_a_over_b_give_the_same_updates(name, old, new, steps, lr, weight_decay):
    # These two copies computed cos(pi * a / b) rather than cos(pi * (a / b)); the learning rates
    # differ in the last bits of a double, which vanish when the update is applied in float32.
    old_curve = _lr_curve(old, steps, lr)
    new_curve = _lr_curve(new, steps, lr)
    assert max(abs(a - b) for a, b in zip(old_curve, new_curve, strict=True)) < 1e-15
    f32 = torch.float32
    assert torch.equal(torch.tensor(old_curve, dtype=f32), torch.tensor(new_curve, dtype=f32)), name
    if name == "digits-pixel-gpt":  # the shipped checkpoint: the whole run, update by update
        assert torch.equal(_adamw_run(old, steps, lr, weight_decay), _adamw_run(new, steps, lr, weight_decay))


@pytest.mark.parametrize("steps", [1, 3, 1500, 2000, 3000])
def test_linear_decay_equals_the_gan_and_rejection_critic_formulas(steps):
    for step in range(steps + 2):
        assert linear_decay(step, steps) == max(0.0, 1.0 - step / max(1, steps))  # GANTrainer, lr_decay=True
        if step <= steps:
            assert linear_decay(step, steps) == 1 - step / steps  # fit_rejection_critic
    assert _lr_curve(lambda opt: linear_decay_scheduler(opt, steps), steps, 1e-3) == \
        _lr_curve(_old(lambda s: 1 - s / steps), steps, 1e-3)


def test_schedule_shape_and_validation():
    curve = [warmup_cosine(s, 100, 10, floor=0.1) for s in range(101)]
    assert curve[0] == 0.1 and curve[9] == 1.0 and curve[10] == 1.0
    assert all(a >= b for a, b in zip(curve[10:], curve[11:], strict=False)) and curve[100] == pytest.approx(0.1)
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match="warmup_steps must be a non-negative int"):
        warmup_cosine_scheduler(opt, 100, -1)
    with pytest.raises(ValueError, match="floor must be in"):
        warmup_cosine_scheduler(opt, 100, 10, floor=2.0)
    with pytest.raises(ValueError, match="total_steps must be a non-negative int"):
        linear_decay_scheduler(opt, 1.5)


# ----------------------------------------------------------------------------- EMA


class OldDiffusionEMA:  # scripts/train_diffusion.py `EMA`, as it was
    def __init__(self, model, decay):
        self.model = copy.deepcopy(model).eval()
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, model):
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for ema_p, p in zip(self.model.parameters(), model.parameters(), strict=True):
            ema_p.lerp_(p.detach(), 1 - decay)


@torch.no_grad()
def old_gan_ema_update(ema, model, ema_decay):  # GANTrainer.step, as it was
    for pe, p in zip(ema.parameters(), model.parameters(), strict=True):
        pe.lerp_(p, 1.0 - ema_decay)
    for be, b in zip(ema.buffers(), model.buffers(), strict=True):
        be.copy_(b)


@pytest.mark.parametrize("decay, warmup", [(0.999, True), (0.995, True), (0.9, False), (0.999, False)])
def test_ema_equals_the_old_copies(decay, warmup):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 2))
    new = EMA(model, decay, warmup=warmup)
    old = OldDiffusionEMA(model, decay) if warmup else copy.deepcopy(model).eval().requires_grad_(False)
    for _ in range(300):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.1)
        model(torch.randn(16, 3))  # moves BatchNorm's running statistics (buffers)
        new.update(model)
        old.update(model) if warmup else old_gan_ema_update(old, model, decay)
    old_model = old.model if warmup else old
    for a, b in zip(new.model.parameters(), old_model.parameters(), strict=True):
        assert torch.equal(a, b)
    if not warmup:  # the GAN copy copied the buffers too (the diffusion nets have none)
        assert all(torch.equal(a, b) for a, b in zip(new.model.buffers(), old_model.buffers(), strict=True))
    assert not new.model.training and not any(p.requires_grad for p in new.model.parameters())
    with pytest.raises(ValueError, match=r"decay must be in \[0, 1\)"):
        EMA(model, 1.0)


# ----------------------------------------------------------------------------- the guarded update


def _model_and_batches(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 32), torch.nn.Dropout(0.1), torch.nn.Linear(32, 1))
    g = torch.Generator().manual_seed(seed)
    return model, [torch.randn(16, 4, generator=g) for _ in range(6)]


@pytest.mark.parametrize("clip", [None, 0.5])
def test_optimizer_step_equals_the_old_hand_written_update(clip):
    old, batches = _model_and_batches()
    new = copy.deepcopy(old)
    opt_old = torch.optim.AdamW(old.parameters(), lr=1e-2)
    opt_new = torch.optim.AdamW(new.parameters(), lr=1e-2)
    torch.manual_seed(1)  # dropout masks
    for x in batches:  # zero_grad, backward, clip_grad_norm_, step: as every old copy wrote it
        loss = old(x).pow(2).mean()
        opt_old.zero_grad(set_to_none=True)
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(old.parameters(), clip)
        opt_old.step()
    torch.manual_seed(1)
    values = [optimizer_step(opt_new, new(x).pow(2).mean(), parameters=new.parameters(), grad_clip=clip)
              for x in batches]
    assert all(isinstance(v, float) for v in values)
    for a, b in zip(old.parameters(), new.parameters(), strict=True):
        assert torch.equal(a, b)


def _state(module: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _modes(module: torch.nn.Module) -> list[bool]:
    return [m.training for m in module.modules()]


def _opt_state(opt: torch.optim.Optimizer) -> list:
    return [(group["lr"], {k: v.clone() if torch.is_tensor(v) else v for k, v in opt.state[p].items()})
            for group in opt.param_groups for p in group["params"]]


def _same_opt_state(a, b) -> bool:
    return len(a) == len(b) and all(
        la == lb and sa.keys() == sb.keys() and all(torch.equal(torch.as_tensor(sa[k]), torch.as_tensor(sb[k]))
                                                    for k in sa)
        for (la, sa), (lb, sb) in zip(a, b, strict=True))


class InfiniteGradient:
    """A forward hook that, from step ``at`` on, leaves the output as it is but makes its gradient
    infinite: the loss stays finite, the gradient does not. Records the module's root weights,
    mode and step at the moment the bad step starts."""

    def __init__(self, root: torch.nn.Module, at_call: int):
        self.root, self.at_call, self.calls = root, at_call, 0
        self.before = None

    def __call__(self, module, inputs, output):
        self.calls += 1
        out = output[0] if isinstance(output, tuple) else output
        if self.calls == self.at_call and out.requires_grad:
            self.before = _state(self.root)
            out.register_hook(lambda g: torch.full_like(g, math.inf))
        return None


def test_fit_stops_a_finite_loss_with_an_infinite_gradient_before_the_update():
    model, batches = _model_and_batches()
    model.eval()
    model[1].train()  # mixed modes: each submodule's mode must come back as it was
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = warmup_cosine_scheduler(opt, 10, 2)
    ema = EMA(model, 0.9)
    hook = InfiniteGradient(model, at_call=3)
    model[2].register_forward_hook(hook)
    history = run_steps(lambda s: {"loss": 1.0, "other": 2.0}, 4, progress=False)
    modes = _modes(model)
    opt_state = None

    def loss_fn(m, step):
        nonlocal opt_state
        if step == 2:
            opt_state = _opt_state(opt)
        return m(batches[step]).pow(2).mean()

    with pytest.raises(NonFiniteLossError, match=r"gradient norm of loss became (inf|nan).*at step 6 of 'bad'"):
        fit(model, opt, loss_fn, 5, scheduler=sched, ema=ema, desc="bad", progress=False, history=history)
    assert _same(hook.before, _state(model))  # weights bit-identical to before the bad step
    assert _same_opt_state(opt_state, _opt_state(opt))  # Adam's moments, step count and lr too
    assert sched.last_epoch == 2 and ema.updates == 2
    assert _modes(model) == modes
    assert len(history["loss"]) == 6 and len(history["other"]) == 4  # steps 4, 5 recorded; 6 not
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("clip", [None, 1.0])
def test_optimizer_step_names_the_loss_and_keeps_everything(clip):
    model, batches = _model_and_batches()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    optimizer_step(opt, model(batches[0]).mean(), grad_clip=clip)
    before, state = _state(model), _opt_state(opt)
    with pytest.raises(NonFiniteLossError, match="d_loss became nan") as info:
        optimizer_step(opt, model(batches[1]).mean() * math.nan, grad_clip=clip, lr=5.0, name="d_loss")
    assert info.value.name == "d_loss" and math.isnan(info.value.value) and info.value.step is None
    assert _same(before, _state(model)) and _same_opt_state(state, _opt_state(opt))


def test_fit_with_the_diffusion_and_vae_training_helpers_stops_nan_data_and_infinite_gradients():
    from aigc_course.diffusion import MLPDenoiser, NoiseSchedule, diffusion_loss_fn
    from aigc_course.vae import make_vae, vae_loss_fn

    torch.manual_seed(0)
    data = torch.randn(64, 2)
    schedule = NoiseSchedule("cosine", 100)
    denoiser = (lambda: MLPDenoiser(dim=2, hidden=32, num_blocks=1, time_dim=16),
                lambda x: diffusion_loss_fn(x, schedule, 16, generator=torch.Generator().manual_seed(0)))
    vae = (lambda: make_vae("2d", hidden=32), lambda x: vae_loss_fn(x, 16, generator=torch.Generator().manual_seed(0)))
    # (the VAE refuses NaN data at its boundary, with a ValueError naming x, before any loss)
    cases = [(*denoiser, "nan data"), (*denoiser, "inf gradient"), (*vae, "inf gradient")]
    for make, loss_fn, bad in cases:
        model = make()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        history = fit(model, opt, loss_fn(data), 2, progress=False)
        before, state, modes = _state(model), _opt_state(opt), _modes(model)
        if bad == "nan data":
            x, match = data.clone(), r"loss became nan at step 2"
            x[:] = math.nan
        else:
            x, match = data, r"gradient norm of loss became (inf|nan) .*at step 2"
            last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
            last.register_forward_hook(InfiniteGradient(model, at_call=1))
        with pytest.raises(NonFiniteLossError, match=match):
            fit(model, opt, loss_fn(x), 3, grad_clip=1.0, progress=False, history=history)
        assert _same(before, _state(model)) and _same_opt_state(state, _opt_state(opt)), bad
        assert _modes(model) == modes and len(history.loss) == 2


# ----------------------------------------------------------------------------- GAN


def _gan(seed=0, **cfg):
    from aigc_course.data import ring_gaussians
    from aigc_course.gan import Discriminator, GANConfig, GANTrainer, Generator

    torch.manual_seed(seed)
    poison = {"at": None}

    def sample_real(b, rng):
        x = ring_gaussians(b, generator=rng)
        if poison["at"] is not None:
            poison["at"] -= 1
            if poison["at"] < 0:
                x[0, 0] = math.nan
        return x

    g, d = Generator(latent_dim=4, hidden=32, depth=2), Discriminator(hidden=32, depth=2)
    return GANTrainer(g, d, sample_real, GANConfig(steps=20, batch_size=32, **cfg), seed=seed), poison


@pytest.mark.parametrize("cfg", [{}, {"d_steps": 2, "loss": "wgan", "gp_weight": 1.0, "ema_decay": 0.9,
                                     "lr_decay": True}])
def test_a_nan_batch_in_a_gan_step_changes_no_weight(cfg):
    trainer, poison = _gan(**cfg)
    trainer.train(3, progress=False)
    trainer.G.eval()
    trainer.D.eval()
    before = [_state(m) for m in (trainer.G, trainer.D, trainer.sampler_net)]
    opt_states = [_opt_state(trainer.opt_g), _opt_state(trainer.opt_d)]
    poison["at"] = 0  # the next real batch carries a NaN
    with pytest.raises(NonFiniteLossError, match=r"d_loss became nan at step 3 of 'GAN'"):
        trainer.train(2, progress=False)
    assert all(_same(b, _state(m)) for b, m in zip(before, (trainer.G, trainer.D, trainer.sampler_net), strict=True))
    assert _same_opt_state(opt_states[0], _opt_state(trainer.opt_g))
    assert _same_opt_state(opt_states[1], _opt_state(trainer.opt_d))
    assert not trainer.G.training and not trainer.D.training  # the modes they had
    assert len(trainer.history["d_loss"]) == len(trainer.history["g_loss"]) == 3


def test_an_infinite_generator_gradient_stops_before_the_generator_update():
    trainer, _ = _gan(ema_decay=0.9, lr_decay=True)
    trainer.train(2, progress=False)
    hook = InfiniteGradient(trainer.G, at_call=2)  # call 1: D's fake batch (no grad); call 2: G's update
    trainer.G.register_forward_hook(hook)
    ema, opt_g = _state(trainer.sampler_net), _opt_state(trainer.opt_g)
    with pytest.raises(NonFiniteLossError, match=r"gradient norm of g_loss became (inf|nan) .*at step 2"):
        trainer.train(1, progress=False)
    assert _same(hook.before, _state(trainer.G)) and _same(ema, _state(trainer.sampler_net))
    assert _same_opt_state(opt_g, _opt_state(trainer.opt_g))
    assert [s.last_epoch for s in trainer.schedulers] == [2, 2]
    assert len(trainer.history["d_loss"]) == len(trainer.history["g_loss"]) == 2


# ----------------------------------------------------------------------------- alignment trainers


def _alignment_setup():
    from aigc_course.alignment import chat_tokenizer, make_examples, preference_pairs
    from aigc_course.gpt import GPT, GPTConfig

    tok = chat_tokenizer()
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=tok.vocab_size, block_size=96, n_layer=1, n_head=2, n_embd=16))
    examples = make_examples(40, seed=0)
    return tok, gpt, examples, preference_pairs(examples, seed=0)


@pytest.mark.parametrize("trainer", ["pretrain", "sft", "reward", "dpo", "rlhf"])
def test_alignment_trainers_stop_an_infinite_gradient_before_the_update(trainer):
    from aigc_course.alignment import (
        RewardModel,
        pretraining_text,
        rlhf,
        sft,
        train_dpo,
        train_reward_model,
    )
    from aigc_course.alignment.sft import pretrain

    tok, gpt, examples, pairs = _alignment_setup()
    reference = copy.deepcopy(gpt).eval()
    model = RewardModel.from_gpt(gpt) if trainer == "reward" else gpt
    head = model.head if trainer == "reward" else model.lm_head
    # the step at which the bad forward happens: DPO and RLHF also run the frozen reference,
    # RLHF decodes before its update, so count only the calls that build a graph
    hook = InfiniteGradient(model, at_call=2)
    head.register_forward_hook(lambda m, i, o: hook(m, i, o) if o.requires_grad else None)
    model.eval()
    modes = _modes(model)
    runs = {
        "pretrain": lambda: pretrain(model, torch.tensor(tok.encode(pretraining_text(30, seed=0))), 3, batch_size=4,
                                     progress=False),
        "sft": lambda: sft(model, examples, tok, 3, batch_size=4, progress=False),
        "reward": lambda: train_reward_model(model, pairs, tok, 3, batch_size=4, progress=False),
        "dpo": lambda: train_dpo(model, reference, pairs, tok, 3, batch_size=4, progress=False),
        "rlhf": lambda: rlhf(model, reference, RewardModel.from_gpt(reference), examples, tok, 3, batch_size=4,
                             max_new_tokens=4, progress=False),
    }
    with pytest.raises(NonFiniteLossError, match=r"gradient norm of loss became (inf|nan) .*at step 1 of"):
        runs[trainer]()
    assert _same(hook.before, _state(model))
    assert _modes(model) == modes


def test_the_old_alignment_update_helper_warns_and_still_works():
    from aigc_course.alignment.sft import make_optimizer
    from aigc_course.alignment.sft import optimizer_step as old_step

    model, batches = _model_and_batches()
    opt = make_optimizer(model, 1e-2)
    with pytest.warns(DeprecationWarning, match="aigc_course.training.optimizer_step"):
        old_step(model, opt, model(batches[0]).mean(), lr=1e-3)
    assert opt.param_groups[0]["lr"] == 1e-3


# ----------------------------------------------------------------------------- recipes


def test_gan_recipes_describe_what_they_train():
    from aigc_course.gan.recipes import RECIPES

    for name, recipe in RECIPES.items():
        text, c = recipe.describe(), recipe.settings()
        assert f"learning rate {c.lr_g:g}" in text and str(c.betas) in text and f"batches of {c.batch_size}" in text
        assert ("decayed linearly to zero" in text) == c.lr_decay, name
    assert "24,000 steps" in RECIPES["best"].describe("grid") and "16,000 steps" in RECIPES["best"].describe("ring")


def test_four_routes_train_with_their_recipes():
    from aigc_course.four_routes import RING_RECIPES, train_ring_routes

    routes = train_ring_routes(3, seed=0, progress=False)
    assert list(routes) == ["gan", "vae", "ar", "ddpm"]
    assert len(routes["gan"].model.history["g_loss"]) == 3
    assert not routes["vae"].model.training and not routes["ar"].model.training
    assert all(r.wall_seconds > 0 for r in routes.values())
    assert "learning rate 0.002" in RING_RECIPES["ar"].describe() and "clipped to 1" in RING_RECIPES["ar"].describe()
    with pytest.raises(ValueError, match="steps must be a positive int"):
        train_ring_routes(0)


def test_history_is_a_plain_record():
    h = History()
    assert h.loss == [] and h.seconds == 0.0


# --------------------------------------------------------------------------- training_memory


def _tiny_mlp(dtype=torch.float32):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(16, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1)).to(dtype)


def test_training_memory_counts_parameters_gradients_and_optimizer_state():
    from aigc_course.training import training_memory

    model = _tiny_mlp()
    n = sum(p.numel() for p in model.parameters())
    x = torch.randn(8, 16)
    mem = training_memory(model, lambda: model(x).square().mean())
    assert mem["parameters"] == mem["gradients"] == 4 * n
    assert mem["optimizer"] == 2 * 4 * n
    assert mem["total"] == sum(v for k, v in mem.items() if k != "total")
    assert all(p.grad is None for p in model.parameters())  # no backward ran
    sgd = training_memory(model, lambda: model(x).square().mean(), optimizer_slots=0)
    assert sgd["optimizer"] == 0
    half = _tiny_mlp(torch.bfloat16)
    assert training_memory(half, lambda: half(x.bfloat16()).float().square().mean())["parameters"] == 2 * n


def test_training_memory_activations_grow_with_the_batch_and_are_the_kept_tensors():
    from aigc_course.training import training_memory

    model = _tiny_mlp()
    small, large = (training_memory(model, lambda b=b: model(torch.randn(b, 16)).square().mean())
                    for b in (8, 64))
    assert large["parameters"] == small["parameters"]
    # the hidden layer (B, 64) float32 is kept for the backward pass at least once
    assert large["activations"] >= 64 * 64 * 4
    assert large["activations"] > 4 * small["activations"]
    frozen = _tiny_mlp().requires_grad_(False)
    assert training_memory(frozen, lambda: frozen(torch.randn(8, 16)).sum())["parameters"] == 0


@pytest.mark.parametrize("kwargs, name", [
    (dict(model="net", loss_fn=lambda: torch.zeros(())), "model"),
    (dict(model=torch.nn.Linear(2, 2), loss_fn=3.0), "loss_fn"),
    (dict(model=torch.nn.Linear(2, 2), loss_fn=lambda: torch.zeros(()), optimizer_slots=-1), "optimizer_slots"),
    (dict(model=torch.nn.Linear(2, 2), loss_fn=lambda: torch.zeros(()), optimizer_slots=True), "optimizer_slots"),
])
def test_training_memory_names_a_bad_argument(kwargs, name):
    from aigc_course.training import training_memory

    with pytest.raises(ValueError, match=name):
        training_memory(**kwargs)
