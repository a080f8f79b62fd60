"""Load a causal LM and its tokenizer from a local directory (a posttrain checkpoint or any HF model)."""

from __future__ import annotations

from pathlib import Path

from posttrain.errors import UserError


def load_causal_lm(path: str | Path, *, trust_remote_code: bool = False):
    """(model, tokenizer) from a directory in Hugging Face format; weights from safetensors only."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    path = Path(path)
    if not (path / "config.json").is_file():
        raise UserError(f"{path}: not a model directory (no config.json); pass a checkpoint written by "
                        "posttrain or a Hugging Face model directory")
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tokenizer.chat_template is None:
        raise UserError(f"{path}: the tokenizer has no chat template; posttrain renders every conversation "
                        "with it (save one with tokenizer.chat_template = ...)")
    model = AutoModelForCausalLM.from_pretrained(path, use_safetensors=True, trust_remote_code=trust_remote_code)
    model.eval()
    return model, tokenizer
