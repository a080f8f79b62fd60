"""What the test folders share besides fixtures: where the repository and the shipped base model are, and
the tiny random Llama most tests train (each test passes only the sizes it changes)."""

from pathlib import Path

from transformers import LlamaConfig

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "assets" / "base-small-seed0"  # the shipped 4.5M base model and its tokenizer


def llama_config(vocab: int, **changes) -> LlamaConfig:
    """2 layers of width 32, 2 heads: a forward and a backward in milliseconds on a CPU."""
    sizes = dict(
        vocab_size=vocab,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
    )
    return LlamaConfig(**{**sizes, **changes})


def tiny_checkpoint(directory: Path, tokenizer) -> Path:
    """A tiny random Llama (seed 0) saved with `tokenizer` in `directory`: a checkpoint any command loads."""
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    LlamaForCausalLM(llama_config(len(tokenizer))).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
