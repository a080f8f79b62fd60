"""LoRA adapters (Hu et al. 2021, arXiv:2106.09685) through peft: train W + (alpha / r) B A instead of W.

    model = apply_lora(model, cfg)                     # cfg.lora_r None: the model itself
    value = apply_lora(value, cfg, head="score")       # reward/value model: the scalar head trains in full
    with adapter_off(model): ref = model(**inputs)     # the base model: PPO's KL reference, no second copy
    final_model(model, cfg.lora_save).save_pretrained(out)

B starts at zero (peft's default), so until the first step a wrapped model computes exactly what its
base does. Only the adapters (and `head`) require grad; the optimizer may still be handed every
parameter, since AdamW skips those that never get a .grad.
"""

from __future__ import annotations

import logging
import sys
import warnings

import torch

from posttrain.errors import UserError

log = logging.getLogger(__name__)


def apply_lora(model, cfg, *, head: str | None = None, seed: int = 0):
    """`model` wrapped by peft with rank-`cfg.lora_r` adapters on `cfg.lora_target`, everything else frozen
    but `head` (a sequence-classification model's scalar layer, which peft copies into `modules_to_save`
    and gives no adapter). `cfg` holds the `Adapters` options; `seed` draws the A matrices (the run's seed:
    the same on every rank, and in every run of it). With `lora_r` None, `model` comes back as is."""
    if cfg.lora_r is None:
        return model
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import PreTrainedModel

    if not isinstance(model, PreTrainedModel):
        raise UserError(
            f"--lora-r: peft's LoRA wraps transformers models, not a {type(model).__name__}; "
            "train every weight (no --lora-r)"
        )
    alpha = 2 * cfg.lora_r if cfg.lora_alpha is None else cfg.lora_alpha
    config = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=alpha,
        target_modules=lora_targets(model, cfg.lora_target),
        lora_dropout=0.0,
        bias="none",
        modules_to_save=None if head is None else [head],
        task_type=TaskType.CAUSAL_LM if head is None else TaskType.SEQ_CLS,
    )
    try:
        with warnings.catch_warnings():  # peft 0.21.2 asks transformers 5 for a renamed property
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
            with torch.random.fork_rng(
                devices=[]
            ):  # A is drawn at random: the run's seed decides it, on every rank
                torch.manual_seed(seed)
                model = get_peft_model(model, config)
    except ValueError as e:  # a layer type peft has no LoRA for, or a model class it cannot wrap
        raise UserError(
            f"--lora-r: peft cannot add LoRA adapters to this {type(model).__name__}: "
            f"{str(e).rstrip('.')}. Name its linear layers with --lora-target, or train every "
            "weight (no --lora-r)"
        ) from None
    trainable, total = trainable_parameters(model)
    log.info(
        "LoRA r=%d alpha=%g on %s: %d of %d parameters train (%.2f%%)",
        cfg.lora_r,
        alpha,
        cfg.lora_target,
        trainable,
        total,
        100 * trainable / total,
    )
    return model


def lora_targets(model, spec: str) -> str | list[str]:
    """peft's `target_modules` for --lora-target: "all-linear" (every linear layer but the output one), or
    the listed names, each of which must be some module's last name component (as peft matches them)."""
    if spec == "all-linear":
        return spec
    names = [n.strip() for n in spec.split(",") if n.strip()]
    present = {full.rpartition(".")[2] for full, _ in model.named_modules()}
    missing = [n for n in names if n not in present]
    if missing or not names:
        from transformers.pytorch_utils import Conv1D

        linear = sorted(
            {
                full.rpartition(".")[2]
                for full, m in model.named_modules()
                if isinstance(m, (torch.nn.Linear, Conv1D))
            }
        )
        raise UserError(
            f"--lora-target {spec!r}: {type(model).__name__} has no module named "
            f"{', '.join(missing) or '(no names given)'}; its linear layers are {', '.join(linear[:12])}"
            f"{' ...' if len(linear) > 12 else ''} (or pass all-linear)"
        )
    return names


def trainable_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts; a tied weight counts once."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def is_lora(model) -> bool:
    # a model can only be a PeftModel once peft is imported, and importing it costs seconds
    peft = sys.modules.get("peft")
    return peft is not None and isinstance(model, peft.PeftModel)


def adapter_off(model):
    """A context under which forwards are the base model's (adapters and the head's trained copy bypassed):
    PPO's frozen KL reference is the LoRA policy with its adapter off, with no second copy of the weights."""
    if not is_lora(model):
        raise TypeError(f"adapter_off needs a LoRA model (apply_lora), not a {type(model).__name__}")
    return model.disable_adapter()


def backbone(model):
    """The transformer body under a classification model's head, LoRA layers in it: `model.base_model` of a
    plain transformers model. (On a peft model that attribute is peft's LoraModel, whose forward is the
    whole classifier's, head and all.)"""
    return model.get_base_model().base_model if is_lora(model) else model.base_model


def final_model(model, mode: str):
    """What a run saves (--lora-save): "merged" folds each adapter into its weight and returns a plain
    transformers model (an ordinary HF directory); "adapter" is the peft model, whose save_pretrained
    writes only the adapters and head, naming the base in adapter_config.json. Merging changes `model`'s
    weights in place: call it once, at the end. A model without LoRA comes back as is."""
    if not is_lora(model):
        return model
    return model.merge_and_unload() if mode == "merged" else model
