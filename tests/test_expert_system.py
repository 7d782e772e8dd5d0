import pytest

from aigc_course.classic.expert_system import (
    ExpertSystem,
    Rule,
    animal_rules,
    generative_route_rules,
)


def test_forward_chaining_identifies_a_cheetah_with_explanation():
    system = ExpertSystem(animal_rules())
    result = system.infer({"has hair", "eats meat", "tawny colour", "dark spots"})
    assert "animal: cheetah" in result.facts
    assert result.derived() == ["mammal", "carnivore", "animal: cheetah"]
    assert [f.cycle for f in result.trace] == [1, 2, 3]
    explanation = result.explain("animal: cheetah")
    assert explanation.splitlines()[0] == "animal: cheetah (by Z9, cycle 3)"
    assert "  carnivore (by Z5, cycle 2)" in explanation and "    has hair (given)" in explanation


def test_penguin_needs_every_condition():
    system = ExpertSystem(animal_rules())
    assert system.conclusions({"has feathers", "does not fly", "swims", "black and white"}, "animal:") == ["animal: penguin"]
    assert system.conclusions({"has feathers", "does not fly", "swims"}, "animal:") == []


def test_unknown_animal_yields_no_conclusion():
    assert ExpertSystem(animal_rules()).conclusions({"has scales", "lays eggs"}, "animal:") == []


def test_route_advisor():
    system = ExpertSystem(generative_route_rules())
    facts = {"output is image", "needs one-step sampling", "needs sharp samples", "output depends on a label or prompt"}
    assert system.conclusions(facts, "route:") == ["route: GAN (Ch. 3.2)", "route: conditional GAN (Ch. 3.2.2)"]


def test_explaining_an_unknown_fact_is_an_error():
    result = ExpertSystem(animal_rules()).infer({"has hair"})
    with pytest.raises(ValueError, match="neither given nor derived"):
        result.explain("animal: tiger")


def test_bad_rules_and_facts():
    with pytest.raises(ValueError, match="at least one condition"):
        Rule("R", [], "x")
    with pytest.raises(ValueError, match="concludes one of its own conditions"):
        Rule("R", ["x"], "x")
    with pytest.raises(ValueError, match="unique"):
        ExpertSystem([Rule("R", ["a"], "b"), Rule("R", ["b"], "c")])
    with pytest.raises(ValueError, match="not a single string"):
        ExpertSystem(animal_rules()).infer("has hair")
