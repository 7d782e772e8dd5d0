"""Training strategies of book 3.1.4 on a tiny character-level chat GPT.

Modules, one idea each: :mod:`~aigc_course.alignment.tasks` (the synthetic instruction data
and its evaluator), :mod:`~aigc_course.alignment.chat` (template, vocabulary, masks,
decoding), :mod:`~aigc_course.alignment.sft` (pretraining and supervised fine-tuning),
:mod:`~aigc_course.alignment.reward` (Bradley-Terry reward model),
:mod:`~aigc_course.alignment.preference` (DPO and RLHF) and
:mod:`~aigc_course.alignment.pipelines` (the shipped checkpoints).
"""

from aigc_course.alignment.chat import (
    ASSISTANT,
    END,
    USER,
    chat_tokenizer,
    encode_examples,
    encode_pairs,
    format_chat,
    format_prompt,
    generate,
    show,
)
from aigc_course.alignment.pipelines import ChatPipeline
from aigc_course.alignment.preference import (
    dpo_loss,
    kl_penalised_reward,
    kl_to_reference,
    rlhf,
    sequence_logprobs,
    train_dpo,
)
from aigc_course.alignment.reward import (
    RewardModel,
    bradley_terry_loss,
    pairwise_accuracy,
    train_reward_model,
)
from aigc_course.alignment.sft import pretrain, response_only_loss, sft
from aigc_course.alignment.tasks import (
    TASK_NAMES,
    TASKS,
    TRAINED_TASKS,
    Example,
    evaluate,
    is_correct,
    is_preferred,
    make_examples,
    parse_response,
    preference_pairs,
    preference_score,
    pretraining_text,
    solve,
)

__all__ = [
    "ASSISTANT", "END", "TASKS", "TASK_NAMES", "TRAINED_TASKS", "USER", "ChatPipeline", "Example",
    "RewardModel", "bradley_terry_loss", "chat_tokenizer", "dpo_loss", "encode_examples", "encode_pairs",
    "evaluate", "format_chat", "format_prompt", "generate", "is_correct", "is_preferred",
    "kl_penalised_reward", "kl_to_reference", "make_examples", "pairwise_accuracy", "parse_response",
    "preference_pairs", "preference_score", "pretrain", "pretraining_text", "response_only_loss",
    "rlhf", "sequence_logprobs", "sft", "show", "solve", "train_dpo", "train_reward_model",
]
