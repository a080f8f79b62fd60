"""Is a model directory what its config.json says? Checked as it loads, before anything trains or serves it.

transformers builds the model config.json describes and fills it from the weights beside it: a tensor the
model has no place for is skipped, a place no tensor fills keeps its random initial value, and both are only
logged. So a GPT-2 config.json over Llama weights, or one that says 2 layers over 3 layers of weights, would
fine-tune random or truncated weights with exit code 0. `checked_load` reads transformers' own loading report
(`output_loading_info`: the tensor names after its renaming, tied weights and known buffers already left out),
so the check costs nothing beyond the load, and turns any disagreement into a UserError naming the directory,
the config field at fault, a few tensors, and what to do.

    checked_load(AutoModelForCausalLM, "runs/demo/sft", dtype=torch.float32)
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from posttrain.errors import UserError

LAYER = re.compile(r"\.(?:layers|layer|h|blocks)\.(\d+)\.")  # model.layers.3.…, transformer.h.3.…
# buffers older checkpoints saved with their weights and models now compute (rotary frequencies, GPT-2's
# causal mask): a checkpoint that holds them is no lie
LEGACY_BUFFER = re.compile(r"(?:^|\.)(?:inv_freq|masked_bias|attn\.bias)$")
LAYER_FIELDS = ("num_hidden_layers", "n_layer", "num_layers", "n_layers")
# when several config fields hold the size a tensor was built with, the likelier culprit first
SIZE_FIELDS = ("hidden_size", "n_embd", "d_model", "vocab_size", "intermediate_size", "n_inner", "head_dim")
TRUSTED = "copy the config.json saved with these weights into the directory"


def checked_load(auto_class, path: str, *, trust_remote_code: bool = False, **kwargs):
    """`auto_class.from_pretrained(path, **kwargs)`, refused with a UserError when config.json names no model
    transformers knows, describes one it cannot build, or does not describe the weights beside it."""
    from huggingface_hub.errors import StrictDataclassError
    from transformers.utils import logging as hf_logging

    check_config(path, trust_remote_code)
    verbosity = hf_logging.get_verbosity()
    # transformers' load report: check_weights says what matters, in one line
    hf_logging.set_verbosity_error()
    try:  # sizes that disagree come back in the report instead of as a RuntimeError
        model, info = auto_class.from_pretrained(
            path,
            output_loading_info=True,
            ignore_mismatched_sizes=True,
            trust_remote_code=trust_remote_code,
            **kwargs,
        )
    except (
        ValueError,
        TypeError,
        StrictDataclassError,
    ) as e:  # a config transformers cannot build a model from
        raise UserError(unbuildable(auto_class, path, e)) from None
    finally:
        hf_logging.set_verbosity(verbosity)
    check_weights(model, info, path)
    return model


def check_config(path: str, trust_remote_code: bool = False) -> None:
    """config.json names a model_type the installed transformers knows (or ships code the user trusts), with
    values transformers accepts. Corrupt JSON raises json.JSONDecodeError, which `load.loading` turns into its
    UserError."""
    file = Path(path) / "config.json"
    if not file.is_file():
        return  # a hub id (transformers checks it), or a peft adapter directory (its base is checked)
    config = json.loads(file.read_text())
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if not isinstance(model_type, str) or not model_type:
        said = "no model_type" if model_type in (None, "") else f"model_type {model_type!r} is not a name"
        raise UserError(
            f"{file}: {said}, so transformers cannot tell which architecture to build; "
            f'set it to the weights\' architecture (e.g. "llama"), or {TRUSTED}'
        )
    from transformers import __version__
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    if model_type in CONFIG_MAPPING_NAMES or (trust_remote_code and "auto_map" in config):
        from huggingface_hub.errors import StrictDataclassError
        from transformers import AutoConfig

        try:  # what the tokenizer and the model read first: a bad value raises here, before either
            AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
        except (ValueError, TypeError, StrictDataclassError) as e:
            raise UserError(unbuildable(AutoConfig, path, e)) from None
        return
    fix = (
        "the model ships its own code (auto_map in config.json): pass --trust-remote-code only if you trust "
        "that code, which runs on this machine"
        if "auto_map" in config
        else "check model_type for a typo, or install a transformers that has it: pip install -U transformers"
    )
    raise UserError(
        f"{file}: model_type {model_type!r} is not known to the installed transformers {__version__}; {fix}"
    )


def unbuildable(auto_class, path: str, e: Exception) -> str:
    """The UserError message for a config transformers raised on: its reason, on one line."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()] or [type(e).__name__]
    if lines[0].startswith("Unrecognized configuration class"):  # a known model_type, but of another kind
        model_type = read_model_type(path)
        kind = {
            "AutoModelForCausalLM": "causal language model",
            "AutoModelForSequenceClassification": "sequence-classification (reward) model",
        }.get(auto_class.__name__, auto_class.__name__)
        return (
            f"{path}: model_type {model_type!r} has no {kind} in transformers; pass a model that generates "
            "text (Llama, GPT-2, Qwen2, ...)"
        )
    reason = re.sub(r"^\w+Error: ", "", lines[-1] if lines[0].endswith(":") else lines[0]).rstrip(".")
    return (
        f"{path}/config.json: transformers cannot build a model from it: {reason}; correct it, or {TRUSTED}"
    )


def read_model_type(path: str) -> str | None:
    try:
        return json.loads((Path(path) / "config.json").read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):
        return None


def check_weights(model, info: dict, where: str) -> None:
    """Every tensor the model has came from the weights, with its shape, and every tensor of the weights went
    somewhere; else a UserError naming the config field at fault. A task model (a reward model: no output
    embeddings) may add its new head and skip a language model's."""
    task = model.get_output_embeddings() is None
    missing = [k for k in info["missing_keys"] if not (task and outside_base(model, k))]
    unexpected = [
        k for k in info["unexpected_keys"] if not (LEGACY_BUFFER.search(k) or task and outside_base(model, k))
    ]
    mismatched = list(info["mismatched_keys"])
    if not (missing or unexpected or mismatched):
        return
    config = model.config.to_dict()
    reason = (
        sizes(mismatched, config)
        if mismatched
        else layers(missing, unexpected, config)
        or untied(model, missing, unexpected, config)
        or architecture(model, missing, unexpected, config)
    )
    raise UserError(f"{where}/config.json does not describe the weights beside it: {reason}")


def outside_base(model, key: str) -> bool:
    """Whether `key` lies outside the transformer body (a head: `score.weight`, `lm_head.weight`)."""
    return key.split(".")[0] != model.base_model_prefix


def sizes(mismatched: list[tuple[str, tuple, tuple]], config: dict) -> str:
    """Tensors of other shapes than config.json builds: the size field the differing dimensions point at."""
    votes, first = Counter(), {}
    mismatched = sorted(mismatched, key=lambda m: natural(m[0]))
    for key, saved, built in mismatched:
        for s, b in zip(saved, built) if len(saved) == len(built) else ():
            for field, value in config.items() if s != b else ():
                if (
                    type(value) is int
                    and value == b
                    and not field.endswith("_id")
                    and field not in LAYER_FIELDS
                ):
                    votes[field] += 1
                    first.setdefault(field, (s, key, saved, built))
    if not votes:
        key, saved, built = mismatched[0]
        return (
            f"{len(mismatched)} tensors have other shapes than config.json gives them ({key} is "
            f"{list(saved)} in the weights, {list(built)} by config.json); {TRUSTED}"
        )
    top = max(votes.values())
    field = min(
        (f for f in votes if votes[f] == top),
        key=lambda f: (SIZE_FIELDS.index(f) if f in SIZE_FIELDS else len(SIZE_FIELDS), f),
    )
    s, key, saved, built = first[field]
    return (
        f"it says {field} = {config[field]}, against the weights' {s}: {len(mismatched)} tensors have "
        f"other shapes ({key} is {list(saved)} in the weights, {list(built)} by config.json); set {field} to "
        f"{s}, or {TRUSTED}"
    )


def layers(missing: list[str], unexpected: list[str], config: dict) -> str | None:
    """A layer count in config.json other than the weights': every stray tensor is in a layer past the
    other's."""
    field = next((f for f in LAYER_FIELDS if type(config.get(f)) is int), None)
    if field is None or not all(LAYER.search(k) for k in missing + unexpected):
        return None
    n = config[field]
    extra = sorted({int(LAYER.search(k)[1]) for k in unexpected})
    absent = sorted({int(LAYER.search(k)[1]) for k in missing})
    if unexpected and not missing and extra[0] >= n:
        have, what = extra[-1] + 1, f"{examples(unexpected)} ... would be left out"
    elif missing and not unexpected and absent == list(range(absent[0], n)):
        have = absent[0]
        what = f"no tensor for {examples(missing)} ...: those layers would start from random values"
    else:
        return None
    return (
        f"it says {field} = {n} but the weights hold {have} layers ({what}); set {field} to {have}, "
        f"or {TRUSTED}"
    )


def untied(model, missing: list[str], unexpected: list[str], config: dict) -> str | None:
    """An output layer config.json says is separate, saved tied to the input embeddings (so not saved)."""
    head = model.get_output_embeddings()
    name = next((n for n, m in model.named_modules() if m is head), None) if head is not None else None
    if unexpected or name is None or config.get("tie_word_embeddings") is not False:
        return None
    if not all(k.startswith(f"{name}.") for k in missing):
        return None
    return (
        f"it says tie_word_embeddings = false but the weights hold no {examples(missing)} (saved tied "
        "to the input embeddings): the output layer would start from random values; set tie_word_embeddings "
        f"to true, or {TRUSTED}"
    )


def architecture(model, missing: list[str], unexpected: list[str], config: dict) -> str:
    """Anything else: most likely a config.json of another architecture (model_type) than the weights'."""
    found = []
    if missing:
        found.append(
            f"{len(missing)} tensors a {type(model).__name__} has are not in the weights "
            f"({examples(missing)} ...)"
        )
    if unexpected:
        found.append(
            f"{len(unexpected)} tensors of the weights have no place in it ({examples(unexpected)} ...)"
        )
    return (
        f"it says model_type {config.get('model_type')!r}, but {' and '.join(found)}; {TRUSTED} "
        "(its model_type and sizes), or pass the directory the weights came from"
    )


def check_adapter(model, path: str, base: str) -> None:
    """A peft adapter directory's tensors are the adapters `model` (its base, wrapped by peft) has, one for
    one: peft skips an adapter tensor with no place in the base, and leaves an adapter it has no tensor for at
    zero (the base's own weight), with at most a warning. A .bin adapter is left to peft."""
    from peft.utils import get_peft_model_state_dict
    from safetensors import safe_open

    file = Path(path) / "adapter_model.safetensors"
    if not file.is_file():
        return
    with safe_open(file, "pt") as f:
        saved = set(f.keys())
    wanted = set(get_peft_model_state_dict(model))
    found = []
    if saved - wanted:
        found.append(
            f"{len(saved - wanted)} of its tensors have no place in the base ({examples(saved - wanted)} ...)"
        )
    if wanted - saved:
        found.append(
            f"{len(wanted - saved)} adapters the base has room for are not in it "
            f"({examples(wanted - saved)} ...)"
        )
    if found:
        raise UserError(
            f"{path}: the peft adapter does not fit its base model {base}: {' and '.join(found)}; set "
            "base_model_name_or_path in adapter_config.json to the model the adapter was trained on"
        )


def examples(keys, n: int = 2) -> str:
    """The first `n` tensor names in natural order (layer 2 before layer 10)."""
    return ", ".join(sorted(keys, key=natural)[:n])


def natural(key: str) -> list[tuple[int, int, str]]:
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in key.split(".")]
