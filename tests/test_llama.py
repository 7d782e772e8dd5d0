"""The LLaMA-style decoder (aigc_course.llama): RoPE and RMSNorm against their equations and
torch, grouped-query attention against multi-head attention, the KV cache, parity with
transformers' LlamaForCausalLM both ways, and bad inputs."""

from __future__ import annotations

import math

import pytest
import torch

from aigc_course.attention import KVCache, MultiHeadAttention, record_attention, repeat_kv_heads
from aigc_course.gpt import GPT, GPTConfig, sequence_bits
from aigc_course.llama import (
    Llama,
    LlamaConfig,
    RMSNorm,
    RotaryEmbedding,
    SwiGLU,
    grouped_query_attention,
    kv_cache_bytes,
    loss_by_position,
    rms_norm,
    rope,
    rope_frequencies,
    swiglu_hidden,
    train_language_model,
)


def tiny(seed=0, **kw):
    torch.manual_seed(seed)
    fields = dict(vocab_size=50, block_size=32, n_layer=2, n_head=4, n_embd=32)
    return Llama(LlamaConfig(**{**fields, **kw})).eval()


def perturbed(model, scale=0.05, seed=1):
    """Non-trivial norm gains too, so a test sees every tensor."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g))
    return model


# ----------------------------------------------------------------------------- RoPE


def test_rope_frequencies_follow_the_equation():
    theta = rope_frequencies(8, base=100.0)
    torch.testing.assert_close(theta, torch.tensor([100.0 ** (-2 * i / 8) for i in range(4)]))
    assert theta[0] == 1.0  # the fastest pair turns one radian per position


def test_rope_rotates_each_pair_by_position_times_theta():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 8, generator=g, dtype=torch.float64)
    positions = torch.tensor([0, 1, 2, 7, 100])
    out = rope(x, positions, base=10000.0)
    theta = rope_frequencies(8, 10000.0).double()
    for t, p in enumerate(positions.tolist()):
        for i in range(4):  # feature i pairs with i + d/2: a complex number times e^{i p theta_i}
            z = torch.complex(x[:, t, i], x[:, t, i + 4]) * torch.exp(1j * torch.tensor(p * theta[i].item()))
            torch.testing.assert_close(out[:, t, i], z.real, atol=1e-6, rtol=1e-6)
            torch.testing.assert_close(out[:, t, i + 4], z.imag, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(out[:, 0], x[:, 0])  # position 0: no rotation
    torch.testing.assert_close(out.norm(dim=-1), x.norm(dim=-1))  # rotations keep lengths


def test_rope_scores_depend_only_on_relative_position():
    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(2, 16, generator=g, dtype=torch.float64), torch.randn(2, 16, generator=g, dtype=torch.float64)

    def score(m, n):
        return (rope(q[:1], torch.tensor([m])) * rope(k[:1], torch.tensor([n]))).sum()

    for m, n in [(5, 2), (0, 0), (40, 3)]:
        for shift in (1, 17, 1000):
            # equal up to float32 angles (LLaMA computes them in float32 too)
            torch.testing.assert_close(score(m + shift, n + shift), score(m, n), atol=1e-10, rtol=1e-10)
    assert not torch.allclose(score(5, 2), score(5, 3))  # ...but it does depend on the distance


def test_rotary_embedding_table_matches_rope_inside_and_past_it():
    rotary = RotaryEmbedding(8, base=500.0, max_positions=16)
    x = torch.randn(2, 3, 10, 8)
    torch.testing.assert_close(rotary(x, 4), rope(x, torch.arange(4, 14), 500.0))
    torch.testing.assert_close(rotary(x, 12), rope(x, torch.arange(12, 22), 500.0))  # past the table
    assert not dict(rotary.state_dict())  # nothing learned, nothing saved


# ----------------------------------------------------------------------------- RMSNorm and SwiGLU


def test_rms_norm_matches_the_equation_and_torch():
    g = torch.Generator().manual_seed(0)
    x = 3 * torch.randn(4, 7, 24, generator=g) + 1
    w = torch.randn(24, generator=g)
    expected = w * x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)
    torch.testing.assert_close(rms_norm(x, w, 1e-6), expected)
    torch_norm = torch.nn.RMSNorm(24, eps=1e-6)
    ours = RMSNorm(24, eps=1e-6)
    with torch.no_grad():
        torch_norm.weight.copy_(w)
        ours.weight.copy_(w)
    torch.testing.assert_close(ours(x), torch_norm(x))
    unit = rms_norm(x, torch.ones(24))
    torch.testing.assert_close(unit.pow(2).mean(-1), torch.ones(4, 7), atol=1e-4, rtol=1e-4)  # RMS 1...
    assert unit.mean(-1).abs().max() > 0.1  # ...but, unlike LayerNorm, not mean 0
    half = rms_norm(x.bfloat16(), w.bfloat16())
    assert half.dtype == torch.bfloat16


def test_swiglu_is_gated_and_has_gpts_mlp_size():
    mlp = SwiGLU(12, 20)
    x = torch.randn(2, 3, 12)
    gate, up = mlp.gate_proj(x), mlp.up_proj(x)
    torch.testing.assert_close(mlp(x), mlp.down_proj(gate * torch.sigmoid(gate) * up))
    assert all(m.bias is None for m in (mlp.gate_proj, mlp.up_proj, mlp.down_proj))
    for d in (64, 128, 4096):  # three matrices of width ~8d/3 hold about GPT's two of width 4d
        assert swiglu_hidden(d) % 8 == 0 and abs(3 * d * swiglu_hidden(d) / (8 * d * d) - 1) < 0.04
    assert swiglu_hidden(4096, multiple_of=256) == 11008  # LLaMA-7B's width


# ----------------------------------------------------------------------------- grouped-query attention


def test_gqa_with_as_many_kv_heads_is_multi_head_attention():
    torch.manual_seed(0)
    mha = MultiHeadAttention(32, 4, bias=False)
    same = MultiHeadAttention(32, 4, bias=False, num_kv_heads=4)
    assert {k: v.shape for k, v in mha.state_dict().items()} == {k: v.shape for k, v in same.state_dict().items()}
    same.load_state_dict(mha.state_dict())
    x = torch.randn(2, 9, 32)
    torch.testing.assert_close(same(x, is_causal=True), mha(x, is_causal=True))


def test_gqa_equals_mha_whose_kv_heads_are_repeated_per_group():
    torch.manual_seed(0)
    d, h, kv = 32, 4, 2
    hd = d // h
    gqa = MultiHeadAttention(d, h, bias=False, num_kv_heads=kv)
    mha = MultiHeadAttention(d, h, bias=False)
    q_w, k_w, v_w = gqa.c_attn.weight.detach().split([d, kv * hd, kv * hd])

    def repeat(w):  # query head j uses K/V head j // (h / kv)
        return w.view(kv, hd, d).repeat_interleave(h // kv, dim=0).reshape(d, d)

    with torch.no_grad():
        mha.c_attn.weight.copy_(torch.cat([q_w, repeat(k_w), repeat(v_w)]))
        mha.c_proj.weight.copy_(gqa.c_proj.weight)
    assert gqa.c_attn.weight.shape == (d + 2 * kv * hd, d)
    x = torch.randn(3, 7, d)
    torch.testing.assert_close(gqa(x, is_causal=True), mha(x, is_causal=True))
    cache = KVCache(3, kv, 16, hd)
    torch.testing.assert_close(gqa(x, is_causal=True, cache=cache), mha(x, is_causal=True))
    assert cache.k.shape == (3, kv, 16, hd) and cache.length == 7  # only the K/V heads are stored


def test_kv_cache_memory_shrinks_by_the_group_size():
    mha, gqa, mqa = tiny(), tiny(n_kv_head=1), tiny(n_kv_head=2)
    assert kv_cache_bytes(mha) == 2 * 2 * 32 * 32 * 4  # 2 (K, V) * layers * block_size * n_embd * 4 bytes
    assert kv_cache_bytes(mha) == 4 * kv_cache_bytes(gqa) == 2 * kv_cache_bytes(mqa)
    assert kv_cache_bytes(mha, batch_size=3) == 3 * kv_cache_bytes(mha)
    gpt = GPT(GPTConfig(vocab_size=50, block_size=32, n_layer=2, n_head=4, n_embd=32))
    assert kv_cache_bytes(gpt) == kv_cache_bytes(mha)


# ----------------------------------------------------------------------------- the model


def test_forward_shapes_loss_and_no_biases():
    model = tiny()
    idx = torch.randint(0, 50, (3, 20))
    logits, loss = model(idx, torch.randint(0, 50, (3, 20)))
    assert logits.shape == (3, 20, 50) and model(idx)[1] is None
    assert abs(loss.item() - math.log(50)) < 0.1
    assert not any(name.endswith("bias") for name, _ in model.named_parameters())
    assert model.lm_head.weight is not model.transformer.wte.weight
    tied = tiny(tie_embeddings=True)
    assert tied.lm_head.weight is tied.transformer.wte.weight
    assert tied.num_params() == sum(p.numel() for p in tied.parameters())
    assert model.num_params() == sum(p.numel() for p in model.parameters()) - 50 * 32
    assert Llama.from_config(model.config.to_dict()).config == model.config


def test_model_is_causal_and_backends_agree():
    model = perturbed(tiny(n_kv_head=2))
    idx = torch.randint(0, 50, (2, 25))
    changed = idx.clone()
    changed[:, 11:] = (changed[:, 11:] + 1) % 50
    a, b = model(idx)[0], model(changed)[0]
    torch.testing.assert_close(a[:, :11], b[:, :11])
    assert not torch.allclose(a[:, 11:], b[:, 11:])
    for backend in ("manual", "blockwise"):
        torch.testing.assert_close(model.set_attention_backend(backend)(idx)[0], a, atol=1e-5, rtol=1e-5)
    maps = model.attention_maps(idx)
    assert maps.shape == (2, 2, 4, 25, 25)
    with record_attention(model) as weights:
        model(idx[:, :5])
    assert len(weights) == 2


@pytest.mark.parametrize("n_kv_head", [4, 2, 1])
@pytest.mark.parametrize("new_tokens", [10, 45])  # 45 runs past block_size=32
def test_kv_cache_generation_equals_no_cache(n_kv_head, new_tokens):
    model = perturbed(tiny(n_kv_head=n_kv_head), scale=0.2)
    idx = torch.randint(0, 50, (2, 6), generator=torch.Generator().manual_seed(1))
    a = model.generate(idx, new_tokens, temperature=0.0, use_cache=True)
    b = model.generate(idx, new_tokens, temperature=0.0, use_cache=False)
    assert a.shape == (2, 6 + new_tokens) and torch.equal(a, b) and torch.equal(a[:, :6], idx)
    gen = dict(top_p=0.9, temperature=1.3)
    c = model.generate(idx, new_tokens, use_cache=True, generator=torch.Generator().manual_seed(7), **gen)
    d = model.generate(idx, new_tokens, use_cache=False, generator=torch.Generator().manual_seed(7), **gen)
    assert torch.equal(c, d)


def test_decode_steps_fill_caches_of_kv_heads_only():
    model = tiny(n_kv_head=1)
    state = model.decoding_state(2)
    logits, state = model.decode_step(torch.randint(0, 50, (2, 5)), state)
    assert logits.shape == (2, 50) and state.caches[0].length == 5
    assert state.caches[0].k.shape == (2, 1, 32, 8)
    state = model.reorder_state(state, torch.tensor([1, 1]))
    assert torch.equal(state.caches[0].k[0], state.caches[0].k[1])


def test_weights_load_into_a_longer_context():
    model = perturbed(tiny(block_size=16))
    longer = model.with_block_size(64)
    assert longer.config.block_size == 64 and longer.config.n_embd == model.config.n_embd
    idx = torch.randint(0, 50, (2, 16))
    torch.testing.assert_close(longer(idx)[0], model(idx)[0])
    assert longer(torch.randint(0, 50, (1, 64)))[0].shape == (1, 64, 50)
    with pytest.raises(ValueError, match="longer than the context"):
        model(torch.randint(0, 50, (1, 17)))
    per_position = loss_by_position(longer, torch.randint(0, 50, (500,)), 64)
    assert per_position.shape == (64,) and torch.isfinite(per_position).all()
    tied = tiny(block_size=16, tie_embeddings=True).with_block_size(20)
    assert tied.lm_head.weight is tied.transformer.wte.weight


def test_training_learns_a_pattern_and_scores_held_out_text():
    model = tiny(block_size=16, vocab_size=5)
    data = torch.arange(400) % 5
    history = train_language_model(model, data, steps=60, batch_size=8, lr=1e-2, warmup=5, progress=False)
    assert history.loss[-1] < 0.1 and len(history.loss) == 60
    assert model.generate(torch.tensor([[0, 1]]), 8, temperature=0.0)[0].tolist() == [0, 1, 2, 3, 4] * 2
    assert sequence_bits(model, data[:100]) < 20  # almost every token certain


def test_same_seed_same_batches_for_both_architectures():
    data = torch.randint(0, 50, (300,), generator=torch.Generator().manual_seed(0))
    runs = [train_language_model(tiny(block_size=16), data, steps=3, batch_size=2, progress=False).loss
            for _ in range(2)]
    assert runs[0] == runs[1]


# ----------------------------------------------------------------------------- Hugging Face parity


@pytest.mark.parametrize(("n_kv_head", "tie"), [(4, False), (2, False), (1, True)])
def test_huggingface_parity_both_ways(n_kv_head, tie):
    transformers = pytest.importorskip("transformers")
    model = perturbed(tiny(block_size=24, vocab_size=61, n_kv_head=n_kv_head, tie_embeddings=tie,
                           rope_base=500.0, norm_eps=1e-5))
    hf = model.to_huggingface()
    assert isinstance(hf, transformers.LlamaForCausalLM)
    assert hf.config.num_key_value_heads == n_kv_head
    assert sum(p.numel() for p in hf.parameters()) == sum(p.numel() for p in model.parameters())
    idx = torch.randint(0, 61, (2, 24), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ours, theirs = model(idx)[0], hf(idx).logits
    torch.testing.assert_close(theirs, ours, atol=1e-4, rtol=1e-4)
    prompt = idx[:, :5]
    greedy = model.generate(prompt, 19, temperature=0.0)
    hf_greedy = hf.generate(prompt, max_new_tokens=19, min_new_tokens=19, do_sample=False)
    assert torch.equal(greedy, hf_greedy)

    back = Llama.from_huggingface(hf)
    assert back.config == model.config
    torch.testing.assert_close(back(idx)[0], ours, atol=1e-6, rtol=1e-6)
    fresh = transformers.LlamaForCausalLM(hf.config).eval()  # random HF weights, converted the other way
    with torch.no_grad():
        torch.testing.assert_close(Llama.from_huggingface(fresh)(idx)[0], fresh(idx).logits, atol=1e-4, rtol=1e-4)


def test_models_huggingface_cannot_match_are_refused():
    transformers = pytest.importorskip("transformers")
    base = dict(vocab_size=20, hidden_size=16, intermediate_size=24, num_hidden_layers=1, num_attention_heads=2)
    for change, name in [({"hidden_act": "gelu"}, "hidden_act"), ({"attention_bias": True}, "attention_bias"),
                         ({"mlp_bias": True}, "mlp_bias"), ({"head_dim": 4}, "head_dim"),
                         ({"rope_parameters": {"rope_type": "linear", "rope_theta": 1e4, "factor": 2.0}},
                          "rope_type")]:
        hf = transformers.LlamaForCausalLM(transformers.LlamaConfig(**base, **change))
        with pytest.raises(ValueError, match=name):
            Llama.from_huggingface(hf)
    gpt2 = GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=16)).to_huggingface()
    with pytest.raises(ValueError, match="model_type 'gpt2'"):
        Llama.from_huggingface(gpt2)


# ----------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(("kwargs", "message"), [
    (dict(vocab_size=0), "LlamaConfig.vocab_size"),
    (dict(n_layer=True), "LlamaConfig.n_layer"),
    (dict(n_embd=30, n_head=4), "divisible by n_head"),
    (dict(n_embd=36, n_head=4), "even size"),
    (dict(n_kv_head=3), "n_kv_head"),
    (dict(n_kv_head=0), "LlamaConfig.n_kv_head"),
    (dict(mlp_hidden=-1), "LlamaConfig.mlp_hidden"),
    (dict(rope_base=1.0), "LlamaConfig.rope_base"),
    (dict(norm_eps=float("nan")), "LlamaConfig.norm_eps"),
    (dict(tie_embeddings="yes"), "LlamaConfig.tie_embeddings"),
])
def test_bad_configs_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LlamaConfig(**{"n_embd": 32, "n_head": 4, **kwargs})


def test_bad_inputs_name_the_argument():
    model = tiny(block_size=8)
    with pytest.raises(ValueError, match="config must be a LlamaConfig"):
        Llama(GPTConfig())
    with pytest.raises(ValueError, match="longer than the context"):
        model.generate(torch.zeros(1, 9, dtype=torch.long), 1)
    with pytest.raises(ValueError, match=r"idx must be a \(B, T\)"):
        model(torch.zeros(9, dtype=torch.long))
    with pytest.raises(ValueError, match="idx must hold integer token ids"):
        model(torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"idx must hold token ids in \[0, 50\)"):
        model.generate(torch.full((1, 2), 50), 1)
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.generate(torch.zeros(1, 2, dtype=torch.long), -1)
    with pytest.raises(ValueError, match="num_kv_heads must be a positive int dividing num_heads=4"):
        MultiHeadAttention(32, 4, num_kv_heads=3)
    with pytest.raises(ValueError, match="cache must hold num_kv_heads=2 heads, got a KVCache of 4"):
        MultiHeadAttention(32, 4, num_kv_heads=2)(torch.zeros(1, 3, 32), cache=KVCache(1, 4, 8, 8))
    with pytest.raises(ValueError, match="rotary"):
        MultiHeadAttention(32, 4, rotary="rope")
    with pytest.raises(ValueError, match="head_dim must be a positive even int"):
        rope(torch.zeros(2, 5), torch.arange(2))
    with pytest.raises(ValueError, match="positions must be a 1-D tensor of integer positions"):
        rope(torch.zeros(2, 4), torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"x must have shape \(..., T, d\) with T = len\(positions\) = 3"):
        rope(torch.zeros(2, 4), torch.arange(3))
    with pytest.raises(ValueError, match="base must be a finite number > 1"):
        rope_frequencies(4, base=0.5)
    with pytest.raises(ValueError, match="length must be an int in"):
        loss_by_position(model, torch.arange(100) % 50, 9)
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        train_language_model(model, torch.arange(100) % 50, steps=0, batch_size=2)
    with pytest.raises(ValueError, match=r"train_ids must hold more than block_size\+1=9 token ids, got 5"):
        train_language_model(model, torch.arange(5), steps=1, batch_size=2)
    with pytest.raises(ValueError, match=r"train_ids must hold token ids in \[0, vocab_size=50\)"):
        train_language_model(model, torch.arange(100), steps=1, batch_size=2)
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        train_language_model(model, torch.arange(100) % 50, steps=1, batch_size=2, seed=True)
    with pytest.raises(ValueError, match="eps must be a finite number > 0"):
        rms_norm(torch.zeros(2, 4), torch.ones(4), 0.0)
    with pytest.raises(ValueError, match=r"weight must have shape \(C,\) = \(4,\)"):
        rms_norm(torch.zeros(2, 4), torch.ones(3))
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        kv_cache_bytes(model, 0)
    with pytest.raises(TypeError, match="model must be a loaded transformers LlamaForCausalLM, got str"):
        Llama.from_huggingface("meta-llama/Llama-2-7b-hf")


def test_grouped_query_attention_reads_kv_head_h_over_group():
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 6, 1, 8, generator=g)
    k, v = torch.randn(2, 2, 5, 8, generator=g), torch.randn(2, 2, 5, 8, generator=g)
    out = grouped_query_attention(q, k, v)
    for h in range(6):
        kv = h // 3
        w = torch.softmax(q[:, h] @ k[:, kv].transpose(-2, -1) / math.sqrt(8), dim=-1)
        torch.testing.assert_close(out[:, h], w @ v[:, kv])
    torch.testing.assert_close(repeat_kv_heads(k, 6)[:, 5], k[:, 1])
    assert repeat_kv_heads(k, 2) is k
    with pytest.raises(ValueError, match="H_kv dividing q's H=6"):
        grouped_query_attention(q, k[:, :1].expand(2, 4, 5, 8), v[:, :1].expand(2, 4, 5, 8))
    with pytest.raises(ValueError, match=r"q must have shape \(B, heads, T, d\)"):
        grouped_query_attention(q[0], k, v)
