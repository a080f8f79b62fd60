"""A byte-level BPE tokenizer trained on a corpus, saved in Hugging Face format with a chat template.

Special tokens: `<|pad|>` (padding, never trained on), `<|end|>` (EOS: ends a document and an
assistant turn, so generation stops there) and one marker per role. A conversation renders as

    <|system|>\\nYou are helpful.<|end|>\\n<|user|>\\nWhat is 2 + 2?<|end|>\\n<|assistant|>\\n4<|end|>\\n

and `add_generation_prompt=True` appends `<|assistant|>\\n`.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

PAD, EOS = "<|pad|>", "<|end|>"
ROLE_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>")
SPECIAL_TOKENS = (PAD, EOS, *ROLE_TOKENS)

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + '<|end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 4096) -> PreTrainedTokenizerFast:
    """Train byte-level BPE on `texts` (any text encodes; no unknown token is needed)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token=PAD, eos_token=EOS, additional_special_tokens=list(ROLE_TOKENS)
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast
