"""Chapter 6.4: stories from a grammar, the story checker, novelty and diversity."""

from __future__ import annotations

import random

import pytest
import torch

from aigc_course.applications import stories, words

PROMPT = stories.StoryPrompt("Mira", "forest", "lantern")
STORY = ("one day Mira went to the forest . Mira wanted to find the lantern . but a storm blocked the way . "
         "at last Mira found the lantern . the end .")


def kinds(text, prompt=PROMPT):
    return sorted({e.split(":")[0] for e in stories.check_story(text, prompt).errors})


def test_the_corpus_is_deterministic_and_keeps_its_prompts():
    a, b = stories.corpus(300, seed=4), stories.corpus(300, seed=4)
    assert a == b and a != stories.corpus(300, seed=5)
    assert len({e.story for e in a}) > 250  # mostly different stories, not a few repeated
    vocab = stories.vocabulary()
    for e in a:
        assert not e.prompt.held_out
        assert 3 <= e.story.count(" .") - 1 <= 5  # three to five sentences, then "the end ."
        assert stories.check_story(e.story, e.prompt).passed, e
        vocab.encode(e.text)
    assert all(p.held_out for p in stories.prompts(50, "held_out", seed=0))
    assert {(p.hero, p.place) for p in stories.prompts(400, "held_out", seed=0)} == stories.HELD_OUT_PAIRS


def test_the_grammar_writes_thousands_of_stories_per_prompt():
    assert stories.stories_per_prompt() == 5994
    rng = random.Random(0)
    assert stories.tell(PROMPT, rng).endswith(" the end .")


def test_a_true_story_passes_every_check():
    check = stories.check_story(STORY, PROMPT)
    assert check.passed and check.kept and check.consistent and check.well_formed and check.ended


def test_each_kind_of_failure_is_detected_and_named():
    assert kinds(STORY.replace("at last Mira", "at last Leo")) == ["consistency"]  # the hero renamed
    assert kinds(STORY.replace("found the lantern", "found the crown")) == ["consistency"]  # object swapped
    assert kinds(STORY.replace("the forest", "the cave")) == ["constraint"]  # the wrong place throughout
    assert kinds(STORY.replace("Mira", "Leo")) == ["constraint"]
    assert kinds(STORY.replace("lantern", "key")) == ["constraint"]
    assert kinds(STORY.replace("but a storm blocked the way", "but a storm the way")) == ["form"]
    assert kinds(STORY.replace(" the end .", "")) == ["ending"]
    assert kinds(STORY + " once") == ["ending"]
    assert kinds(STORY + " the end .") == ["ending"]
    renamed = stories.check_story(STORY.replace("at last Mira", "at last Leo"), PROMPT)
    assert renamed.errors == ("consistency: the hero's name changes: Mira -> Leo",)
    assert not renamed.consistent and renamed.kept and renamed.ended and renamed.well_formed
    assert kinds("") == ["constraint", "ending"]


def test_novelty_tells_a_copied_story_from_a_new_one():
    train = stories.corpus(400, seed=0)
    vocab = stories.vocabulary()
    index = stories.story_index(train, vocab)
    copied = stories.novelty(train[7].story, index, vocab)
    assert copied.copied and copied.new_share == 0.0 and copied.longest == copied.length
    held = stories.StoryPrompt("Mira", "forest", "lantern")  # a held-out pair: never in a training story
    assert held.held_out
    new = stories.novelty(STORY, index, vocab)
    assert not new.copied and new.longest < new.length and new.new_share > 0.2
    short = stories.novelty("the end .", index, vocab)  # shorter than 8 words: no window to score
    assert short.new_share != short.new_share and short.copied


def test_distinct_n_and_the_summary_row():
    assert stories.distinct_n(["a b c", "a b d"], 2) == 3 / 4
    assert stories.distinct_n([STORY] * 4, 4) == pytest.approx(1 / 4, abs=0.02)
    checks = [stories.check_story(STORY, PROMPT), stories.check_story(STORY.replace(" the end .", ""), PROMPT),
              stories.check_story(STORY.replace("one day", "once").replace(" the end .", ""), PROMPT)]
    vocab = stories.vocabulary()
    index = stories.story_index([stories.Example(PROMPT, STORY)], vocab)
    row = stories.summary(checks, [stories.novelty(c.text, index, vocab) for c in checks])
    assert row["kept"] == 1.0 and row["ended"] == row["all four"] == pytest.approx(1 / 3)
    assert row["copied whole"] == pytest.approx(2 / 3)  # the story and its prefix occur verbatim, the third does not


def test_training_batches_score_the_story_only_and_a_gpt_writes_from_a_prompt():
    vocab = stories.vocabulary()
    train = stories.corpus(4, seed=1)
    idx, targets = stories.training_batch(train, vocab)
    assert idx.shape == targets.shape and (idx[:, 0] == vocab.stoi[words.BOS]).all()
    assert (targets[:, : stories.PROMPT_WORDS] == -1).all()
    assert targets[0, stories.PROMPT_WORDS].item() == vocab.stoi[train[0].story.split()[0]]
    model = stories.storyteller(vocab, seed=0).eval()  # training itself runs on page 6.4 and in the benchmark
    loss = model(idx, targets)[1]
    assert loss.item() == pytest.approx(torch.log(torch.tensor(float(len(vocab)))).item(), rel=0.2)
    out = stories.write_stories(model, vocab, [PROMPT, PROMPT], max_words=10, generator=torch.Generator().manual_seed(0))
    again = stories.write_stories(model, vocab, [PROMPT, PROMPT], max_words=10, generator=torch.Generator().manual_seed(0))
    assert out == again and len(out) == 2 and all(len(o.split()) <= 10 for o in out)


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="hero"):
        stories.StoryPrompt("Bob", "forest", "lantern")
    with pytest.raises(ValueError, match="place"):
        stories.StoryPrompt("Mira", "moon", "lantern")
    with pytest.raises(ValueError, match="goal"):
        stories.StoryPrompt("Mira", "forest", "sword")
    with pytest.raises(ValueError, match="split"):
        stories.prompts(3, "test")
    with pytest.raises(ValueError, match="n must"):
        stories.prompts(0)
    with pytest.raises(ValueError, match="text"):
        stories.check_story(None, PROMPT)
    with pytest.raises(ValueError, match="prompt"):
        stories.check_story(STORY, ("Mira", "forest", "lantern"))
    with pytest.raises(ValueError, match="prompt"):
        stories.tell("Mira", random.Random(0))
    with pytest.raises(ValueError, match="story_prompts"):
        stories.write_stories(None, stories.vocabulary(), [])
    with pytest.raises(ValueError, match="examples"):
        stories.training_batch([], stories.vocabulary())
    vocab = stories.vocabulary()
    with pytest.raises(ValueError, match="examples must hold steps"):
        stories.train_storyteller(stories.storyteller(vocab), stories.corpus(3), vocab, steps=2, batch_size=2)
    with pytest.raises(ValueError, match="steps"):
        stories.train_storyteller(stories.storyteller(vocab), stories.corpus(3), vocab, steps=0)
    with pytest.raises(ValueError, match="texts"):
        stories.distinct_n([], 2)
    with pytest.raises(ValueError, match="checks and novelties"):
        stories.summary([], [])
    with pytest.raises(ValueError, match="vocabulary"):
        stories.novelty("Mira met a dragon", stories.story_index(stories.corpus(2), stories.vocabulary()),
                        stories.vocabulary())
