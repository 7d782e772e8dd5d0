"""Chapter 6.3: match reports from a table and product blurbs, and their checkers."""

from __future__ import annotations

import random

import pytest
import torch

from aigc_course.applications import marketing, news, words
from aigc_course.gpt import GPT, GPTConfig
from aigc_course.seq2seq import EncoderDecoderTransformer

ROW = news.MatchRow("Lions", "Rovers", 1, 3, 67, "Leeds")  # the away team won


def test_every_phrasing_of_a_row_is_faithful_and_parses_back():
    for phrasing in range(len(news.PHRASINGS)):
        sentence = news.describe(ROW, phrasing)
        assert news.parse_report(sentence) == ROW.facts()
        assert news.check_report(sentence, ROW).faithful
    assert news.describe(ROW) == "Rovers beat Lions 3 - 1 at Leeds , the winner came in minute 67 ."


def test_the_checker_names_a_swapped_team_a_wrong_score_and_an_unknown_form():
    swapped = news.check_report("Lions beat Rovers 3 - 1 at Leeds , the winner came in minute 67 .", ROW)
    assert not swapped.faithful
    assert {e.split(":")[0] for e in swapped.errors} == {"winner", "loser"}
    score = news.check_report("Lions lost 1 - 2 to Rovers at Leeds after a goal in minute 67 .", ROW)
    assert [e.split(":")[0] for e in score.errors] == ["winner_goals"]
    assert news.check_report("Rovers beat Lions .", ROW).errors == ("not a known phrasing",)
    rows = [ROW, ROW]
    assert news.faithfulness([news.describe(ROW), "Rovers beat Lions ."], rows) == 0.5


def test_splits_hold_out_score_lines_and_teams():
    train = news.match_rows(300, "train", seed=1)
    held = news.match_rows(100, "held_out_scores", seed=1)
    unseen = news.match_rows(100, "unseen_teams", seed=1)
    assert not {(r.home_goals, r.away_goals) for r in train} & news.HELD_OUT_SCORES
    assert {(r.home_goals, r.away_goals) for r in held} <= news.HELD_OUT_SCORES
    assert not {t for r in train for t in (r.home, r.away)} & set(news.UNSEEN_TEAMS)
    assert all({r.home, r.away} & set(news.UNSEEN_TEAMS) for r in unseen)
    assert news.match_rows(5, seed=3) == news.match_rows(5, seed=3)


def test_delexicalise_and_relexicalise_are_inverse():
    for phrasing in range(len(news.PHRASINGS)):
        sentence = news.describe(ROW, phrasing)
        slotted = news.delexicalise(sentence, ROW)
        assert not {"Lions", "Rovers", "Leeds", "67"} & set(slotted.split())
        assert news.relexicalise(slotted, ROW) == sentence
        news.vocabulary().encode(slotted)  # every delexicalised word is in the vocabulary


def test_vocabulary_round_trip_and_unknown_words():
    vocab = news.vocabulary()
    text = news.delexicalise(news.describe(ROW, 1), ROW)
    assert vocab.decode(vocab.encode(text) + [vocab.stoi[words.EOS], 5]) == text
    with pytest.raises(ValueError, match="text"):
        vocab.encode("Lions beat")


def test_batches_and_a_model_write_reports_of_the_right_form():
    vocab = news.vocabulary()
    rows = news.match_rows(4, seed=2)
    source = news.source_ids(rows, vocab, [0, 1, 2, 0])
    assert source.shape == (4, 3)
    texts = [news.delexicalise(news.describe(r, p), r) for r, p in zip(rows, [0, 1, 2, 0], strict=True)]
    target_in, target_out = words.shifted_ids(texts, vocab)
    assert target_in.shape == target_out.shape and (target_in[:, 0] == vocab.stoi[words.BOS]).all()
    assert (target_out[target_in == vocab.stoi[words.PAD]] == -1).all()  # padding is not scored
    torch.manual_seed(0)
    model = EncoderDecoderTransformer(vocab_size=len(vocab), block_size=24, source_block_size=3, n_layer=1,
                                      n_head=2, n_embd=16)
    loss = model(source, target_in, None, target_out)[1]
    assert loss.item() == pytest.approx(torch.log(torch.tensor(float(len(vocab)))).item(), rel=0.2)
    reports = news.write_reports(model.eval(), rows, vocab)
    assert len(reports) == 4 and all(isinstance(r, str) for r in reports)


def test_training_blurbs_never_hallucinate_and_each_claim_is_found():
    for text in marketing.blurbs(200, seed=0):
        name = " ".join(text.split()[:2])
        check = marketing.check_blurb(text, name)
        assert not check.hallucinated, text
        features, capacities = marketing.claims(text)
        assert len(features) == 2 and capacities == (marketing.PRODUCTS[name][0],)


def test_unsupported_features_and_wrong_capacities_are_hallucinations():
    go = marketing.check_blurb("Nimbus Go : app control , holds 0.5 litres and fits in a bag . boil better !",
                               "Nimbus Go")
    assert go.unsupported == ("app",) and go.hallucinated
    mini = marketing.check_blurb("Nimbus Mini : holds 1.7 litres , a quiet boil and stops when dry . boil better !",
                                 "Nimbus Mini")
    assert mini.wrong_capacities == ("1.7",) and not mini.unsupported
    assert marketing.hallucination_rate([go, marketing.check_blurb("Nimbus Mini : a quiet boil .", "Nimbus Mini")]) == 0.5


def test_a_gpt_writes_blurbs_from_a_name_prompt():
    vocab = marketing.vocabulary()
    texts = marketing.blurbs(8, seed=1)
    for text in texts:
        vocab.encode(text)
    idx, targets = words.shifted_ids(texts, vocab)
    assert idx.shape == targets.shape and (idx[:, 0] == vocab.stoi[words.BOS]).all()
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(vocab), block_size=32, n_layer=1, n_head=2, n_embd=16)).eval()
    out = marketing.write_blurbs(model, vocab, ["Nimbus Go", "Nimbus Pro"], temperature=1.0,
                                 generator=torch.Generator().manual_seed(0))
    assert [o.split()[:3] for o in out] == [["Nimbus", "Go", ":"], ["Nimbus", "Pro", ":"]]
    again = marketing.write_blurbs(model, vocab, ["Nimbus Go", "Nimbus Pro"], temperature=1.0,
                                   generator=torch.Generator().manual_seed(0))
    assert out == again


def test_blurb_products_are_drawn_evenly():
    names = [" ".join(t.split()[:2]) for t in marketing.blurbs(600, seed=0)]
    assert set(names) == set(marketing.PRODUCTS)
    rng = random.Random(0)
    assert marketing.blurb("Nimbus Go", rng).startswith("Nimbus Go : ")
