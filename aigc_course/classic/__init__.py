"""AI 1.0: the methods that came before deep learning, as real code (Chapter 1.1.1).

* :mod:`aigc_course.classic.expert_system` -- a rule-based expert system (forward chaining).
* :mod:`aigc_course.classic.ngram` -- a statistical character n-gram language model.
"""

from aigc_course.classic.expert_system import ExpertSystem, Rule
from aigc_course.classic.ngram import NGramLanguageModel

__all__ = ["ExpertSystem", "NGramLanguageModel", "Rule"]
