"""The encoder-decoder Transformer: golden tests against torch.nn.Transformer and the course's GPT."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aigc_course import decoding
from aigc_course.gpt import GPT, GPTConfig
from aigc_course.seq2seq import EncoderDecoderTransformer, TransformerDecoder, TransformerEncoder

C, H, L = 32, 4, 2


def gelu_tanh(x):
    return F.gelu(x, approximate="tanh")


def torch_transformer(seed=0):
    torch.manual_seed(seed)
    tr = nn.Transformer(C, H, L, L, 4 * C, dropout=0.0, activation=gelu_tanh, batch_first=True, norm_first=True)
    with torch.no_grad():  # torch zero-inits biases and LayerNorm offsets: make every weight count
        for p in tr.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return tr.eval()


def our_pair(tr):
    encoder = TransformerEncoder(C, L, H).load_torch(tr.encoder).eval()
    decoder = TransformerDecoder(vocab_size=11, block_size=16, n_layer=L, n_head=H, n_embd=C).load_torch(tr.decoder)
    return encoder, decoder.eval()


@pytest.mark.filterwarnings("ignore:enable_nested_tensor")
def test_matches_torch_transformer_with_padding_masks():
    tr = torch_transformer()
    encoder, decoder = our_pair(tr)
    torch.manual_seed(1)
    src, tgt = torch.randn(3, 7, C), torch.randn(3, 5, C)
    lengths = torch.tensor([7, 4, 2])
    real = torch.arange(7)[None, :] < lengths[:, None]  # (B, S) True = real token
    causal = nn.Transformer.generate_square_subsequent_mask(5)
    with torch.no_grad():
        ref_memory = tr.encoder(src, src_key_padding_mask=~real)
        ref = tr.decoder(tgt, ref_memory, tgt_mask=causal, tgt_is_causal=True, memory_key_padding_mask=~real)
        memory = encoder(src, real)
        out = decoder.decode_embeddings(tgt, memory, real)
    assert torch.allclose(memory[real], ref_memory[real], atol=1e-5)  # padded positions' outputs are unused
    assert torch.allclose(out, ref, atol=1e-5)
    with torch.no_grad():  # without padding the whole memory matches
        assert torch.allclose(encoder(src), tr.encoder(src), atol=1e-5)


def test_padding_does_not_change_the_output():
    torch.manual_seed(0)
    model = EncoderDecoderTransformer(vocab_size=9, block_size=8, n_embd=32, n_head=4).eval()
    source, idx = torch.randint(0, 9, (1, 4)), torch.randint(0, 9, (1, 3))
    padded = torch.cat([source, torch.randint(0, 9, (1, 3))], dim=1)
    mask = torch.tensor([[True] * 4 + [False] * 3])
    with torch.no_grad():
        a = model(source, idx)[0]
        b = model(padded, idx, source_mask=mask)[0]
    assert torch.allclose(a, b, atol=1e-5)


def test_decoder_without_memory_is_the_gpt():
    torch.manual_seed(0)
    gpt = GPT(GPTConfig(vocab_size=13, block_size=10, n_layer=2, n_head=2, n_embd=16)).eval()
    decoder = TransformerDecoder.from_gpt(gpt).eval()
    idx = torch.randint(0, 13, (2, 10))
    with torch.no_grad():
        assert torch.allclose(decoder(idx)[0], gpt(idx)[0], atol=1e-5)
    prompt = idx[:, :3]
    assert torch.equal(decoding.generate(decoder, prompt, 7), gpt.generate(prompt, 7, temperature=0))


def test_cached_decoding_matches_full_forward():
    torch.manual_seed(0)
    model = EncoderDecoderTransformer(vocab_size=7, block_size=8, n_embd=16, n_head=2).eval()
    source = torch.randint(0, 7, (2, 5))
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    out = model.generate(source, torch.zeros(2, 1, dtype=torch.long), 6, source_mask=mask)
    memory = model.encode(source, mask)
    state = model.decoder.decoding_state(2, use_cache=False, memory=memory, memory_mask=mask)
    assert torch.equal(decoding.generate(model.decoder, out[:, :1], 6, state=state), out)
    with torch.no_grad():
        logits = model(source, out[:, :-1], source_mask=mask)[0]
    assert torch.equal(logits.argmax(-1), out[:, 1:])  # greedy: each token is the argmax of the full pass


def test_attention_maps_shapes_and_padding():
    model = EncoderDecoderTransformer(vocab_size=7, block_size=8, n_layer=2, n_head=2, n_embd=16).eval()
    source, idx = torch.randint(0, 7, (2, 5)), torch.randint(0, 7, (2, 4))
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    maps = model.attention_maps(source, idx, mask)
    assert maps["encoder"].shape == (2, 2, 2, 5, 5)
    assert maps["decoder"].shape == (2, 2, 2, 4, 4)
    assert maps["cross"].shape == (2, 2, 2, 4, 5)
    assert torch.all(maps["cross"][:, 1, :, :, 2:] == 0) and torch.all(maps["encoder"][:, 1, :, :, 2:] == 0)
    assert torch.all(maps["decoder"].triu(1) == 0)
    assert torch.allclose(maps["cross"].sum(-1), torch.ones(()))


def test_training_reduces_the_loss():
    torch.manual_seed(0)
    model = EncoderDecoderTransformer(vocab_size=5, block_size=6, n_embd=16, n_head=2)
    source = torch.randint(0, 5, (16, 5))
    idx = torch.cat([torch.zeros(16, 1, dtype=torch.long), source.flip(1)], dim=1)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        loss = model(source, idx[:, :-1], targets=idx[:, 1:])[1]
        first = first or loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.6 * first


def test_config_rebuilds_the_model():
    model = EncoderDecoderTransformer(vocab_size=9, block_size=6, n_embd=16, n_head=2, n_encoder_layer=1)
    clone = EncoderDecoderTransformer(**model.config)
    clone.load_state_dict(model.state_dict())
    assert TransformerDecoder(**model.decoder.config).config == model.decoder.config


@pytest.mark.parametrize(("call", "argument"), [
    (lambda m: m.encode(torch.zeros(2, 5)), "source"),
    (lambda m: m.encode(torch.zeros(2, 9, dtype=torch.long)), "source_block_size"),
    (lambda m: m(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long),
                 source_mask=torch.ones(2, 4, dtype=torch.bool)), "mask"),
    (lambda m: m(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long),
                 source_mask=torch.ones(2, 3)), "mask"),
    (lambda m: m.decoder(torch.zeros(2, 3, dtype=torch.long), torch.zeros(3, 4, 16)), "memory"),
    (lambda m: m.decoder(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 4, 8)), "memory"),
    (lambda m: m.decoder(torch.zeros(2, 3, dtype=torch.long), memory_mask=torch.ones(2, 4, dtype=torch.bool)),
     "memory_mask"),
    (lambda m: m.decoder(torch.zeros(2, 9, dtype=torch.long)), "block_size"),
    (lambda m: m.decoder(torch.zeros(2, 3)), "idx"),
    (lambda m: m(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3, dtype=torch.long),
                 targets=torch.zeros(2, 4, dtype=torch.long)), "targets"),
    (lambda m: m.encoder(torch.zeros(2, 3, 8)), "x"),
    (lambda m: EncoderDecoderTransformer(source_vocab_size=0), "source_vocab_size"),
    (lambda m: TransformerEncoder(n_layer=0), "n_layer"),
    (lambda m: m.generate(torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 1, dtype=torch.long), 3,
                          num_beams=0), "num_beams"),
])
def test_bad_inputs_name_the_argument(call, argument):
    model = EncoderDecoderTransformer(vocab_size=7, block_size=8, n_embd=16, n_head=2)
    with pytest.raises(ValueError, match=argument):
        call(model)


@pytest.mark.filterwarnings("ignore:enable_nested_tensor")
def test_load_torch_refuses_other_sizes():
    tr = nn.Transformer(C, H, L, L, 64, batch_first=True, norm_first=True)
    with pytest.raises(ValueError, match="dim_feedforward"):
        TransformerEncoder(C, L, H).load_torch(tr.encoder)


def test_reversal_task_layouts():
    from aigc_course.seq2seq_tasks import BOS, EOS, PAD, ReversalTask

    task = ReversalTask(2, 5)
    batch = task.batch(16, torch.Generator().manual_seed(0))
    for i, n in enumerate(batch.lengths.tolist()):
        x = batch.source[i, :n]
        assert torch.all(batch.source[i, n:] == PAD) and batch.source_mask[i].sum() == n
        assert batch.target_in[i, 0] == BOS and torch.equal(batch.target_in[i, 1 : n + 1], x.flip(0))
        assert torch.equal(batch.target_out[i, : n + 1], torch.cat([x.flip(0), torch.tensor([EOS])]))
        assert torch.all(batch.target_out[i, n + 1 :] == -1)
        assert torch.equal(batch.prefix_in[i, : 2 * n + 1], torch.cat([x, torch.tensor([BOS]), x.flip(0)]))
        assert torch.all(batch.prefix_out[i, :n] == -1)
        assert torch.equal(batch.prefix_out[i, n : 2 * n + 1], torch.cat([x.flip(0), torch.tensor([EOS])]))

    model = EncoderDecoderTransformer(vocab_size=13, block_size=task.target_block_size, n_embd=16, n_head=2)
    assert 0.0 <= task.exact_match(model, batch) <= 1.0
    gpt = GPT(GPTConfig(vocab_size=13, block_size=task.prefix_block_size, n_layer=1, n_head=2, n_embd=16))
    assert 0.0 <= task.exact_match(gpt, batch) <= 1.0
    with pytest.raises(ValueError, match="max_length"):
        ReversalTask(4, 3)
    with pytest.raises(ValueError, match="n must"):
        task.batch(0)
