"""Where PPO's rollouts are generated: one small interface, two engines.

    backend = make_backend("sampler", policy, tokenizer)    # posttrain's sampler (CPU and GPU), the default
    out = backend.generate(query, query_mask, max_new_tokens=48, temperature=1.0, top_p=1.0,
                           eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, draws=draws)
    ...                                                       # a PPO step changes the policy's weights
    backend.load_weights(policy)                              # the engine generates with the new ones

`generate` takes left-padded (B, P) prompts and returns a `Sampled`: (B, T) response tokens, padded
with `pad_token_id` after each row's first EOS, T the longest row, and, where the engine computes them
with the trainer's own model, each token's log-probability and entropy (what
`posttrain.generation.sampler.sample(..., with_logprobs=True)` returns; None from an engine that
does not, and PPO then recomputes them). `draws` holds (B, max_new_tokens) uniforms, one per row and position:
the sampler draws each token with them (so a row's sample does not depend on the rest of its batch, or on how
the batch is split across ranks); an engine with its own sampling derives each row's seed from them.

`vllm` (`VLLMBackend`, the `posttrain[vllm]` extra, one CUDA GPU) runs vLLM's engine in this process,
beside the trainer, and copies the policy's weights into it after every PPO step. `check_backend(name)`
raises the UserError a backend would (vllm missing, no GPU) without loading anything, for a config's check.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Callable
from typing import Protocol

import torch

from posttrain.errors import UserError
from posttrain.generation.sampler import Sampled, sample, trim

# vLLM's KV cache and activations may take this share of the GPU's memory; the rest stays for the
# trainer's policy, reference, value and reward models, their gradients and AdamW state.
VLLM_GPU_SHARE = 0.3
# A row's seed is its first draw scaled to 31 bits: the same row gets the same seed whatever its
# batch, and any engine's seed type holds it.
SEED_RANGE = 2**31
VLLM_INSTALL = (
    "install the posttrain[vllm] extra on a machine with an NVIDIA GPU (pip install "
    "'posttrain[vllm]'), or use --generation-backend sampler, which runs anywhere"
)


class GenerationBackend(Protocol):
    name: str

    def generate(
        self,
        query: torch.Tensor,
        query_mask: torch.Tensor,
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        eos_token_id: int,
        pad_token_id: int,
        draws: torch.Tensor,
    ) -> Sampled: ...

    def load_weights(self, model: torch.nn.Module) -> None: ...


class SamplerBackend:
    """posttrain's own sampler, on the trained module itself: nothing to copy after a step, and the sampled
    tokens' log-probabilities come with them (the rollout's policy forward is not needed)."""

    name = "sampler"

    def __init__(self, model: torch.nn.Module, tokenizer=None):
        self.model = model

    def generate(
        self, query, query_mask, *, max_new_tokens, temperature, top_p, eos_token_id, pad_token_id, draws
    ):
        scored = temperature > 0  # greedy decoding has no distribution to give log-probabilities of
        out = sample(
            self.model,
            query,
            query_mask,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            eos_token_id=eos_token_id,
            pad_token_id=pad_token_id,
            draws=draws.to(query.device),
            with_logprobs=scored,
        )
        return out if scored else Sampled(out, None, None)

    def load_weights(self, model: torch.nn.Module) -> None:
        self.model = model


class VLLMBackend:
    """vLLM's engine (`vllm.LLM`) on one CUDA GPU, in this process, started from the policy as it is now.

    The policy and tokenizer are saved once to a temporary directory for the engine to load. After
    each PPO step `load_weights` copies the trainer's state dict into the running engine, in place,
    through vLLM's `reload_weights` worker method (`llm.collective_rpc("reload_weights",
    kwargs={"weights_iterator": ...})`, vLLM's docs/training/layerwise.md, "Mid Level reload_weights
    API"), and drops the prefix cache, whose keys and values the old weights computed.

    The engine core runs in this process (VLLM_ENABLE_V1_MULTIPROCESSING=0): a separate engine process
    would receive the weights through msgpack, whose untyped decoding turns a tensor argument into a
    list (vllm/v1/serial_utils.py, 0.30.0); in this process reload_weights takes the tensors as they are.

    Sampling is vLLM's: row i is seeded from draws[i, 0], so its tokens are reproducible and do not
    depend on its batch, but they are not the sampler's tokens for the same draws (greedy ones are,
    up to floating-point ties). The engine computes in `dtype` (default: the policy's), so at bf16 the
    tokens come from a slightly different distribution than the fp32 policy whose logprobs PPO uses."""

    name = "vllm"

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,
        *,
        dtype: torch.dtype | None = None,
        gpu_memory_utilization: float = VLLM_GPU_SHARE,
        enforce_eager: bool = True,
    ):
        require_vllm()
        os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"  # read when the engine starts (see above)
        try:
            from vllm import LLM, SamplingParams
        except (
            Exception
        ) as e:  # a broken install raises ImportError, OSError (a missing .so), RuntimeError...
            raise UserError(
                f"--generation-backend vllm: vllm is installed but does not import "
                f"({type(e).__name__}: {e}); {VLLM_INSTALL}"
            ) from e
        self.SamplingParams = SamplingParams
        self.dtype = dtype or next(model.parameters()).dtype
        self._dir = tempfile.TemporaryDirectory(prefix="posttrain-vllm-")  # the engine's starting checkpoint
        model.save_pretrained(self._dir.name)
        tokenizer.save_pretrained(self._dir.name)
        self.llm = LLM(
            model=self._dir.name,
            dtype=str(self.dtype).removeprefix("torch."),
            seed=0,
            gpu_memory_utilization=gpu_memory_utilization,
            enforce_eager=enforce_eager,
        )

    def generate(
        self, query, query_mask, *, max_new_tokens, temperature, top_p, eos_token_id, pad_token_id, draws
    ):
        # the stop is our EOS alone (not the generation config's other end tokens), kept in the output:
        # the rollout's mask counts the EOS as the response's last token
        params = [
            self.SamplingParams(
                temperature=temperature,
                top_p=top_p,
                max_tokens=max_new_tokens,
                seed=None if temperature == 0 else seed,
                ignore_eos=True,
                stop_token_ids=[eos_token_id],
                detokenize=False,
            )
            for seed in row_seeds(draws)
        ]
        outputs = self.llm.generate(prompt_rows(query, query_mask), params, use_tqdm=False)
        rows = [list(out.outputs[0].token_ids) for out in outputs]
        # vLLM's log-probabilities come from its own kernels, in its dtype: PPO recomputes the trainer's
        return Sampled(padded(rows, eos_token_id, pad_token_id).to(query.device), None, None)

    def load_weights(self, model: torch.nn.Module) -> None:
        # one tensor at a time onto the engine's GPU, in the engine's dtype, in layer order (vLLM buffers a
        # layer's weights until all of them have come)
        weights = ((name, t.detach().to("cuda", self.dtype)) for name, t in model.state_dict().items())
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": weights})
        self.llm.reset_prefix_cache()


def prompt_rows(query: torch.Tensor, query_mask: torch.Tensor) -> list[dict]:
    """An engine's prompts: each row of the left-padded (B, P) query without its padding."""
    return [
        {"prompt_token_ids": row[keep.bool()].tolist()} for row, keep in zip(query.cpu(), query_mask.cpu())
    ]


def row_seeds(draws: torch.Tensor) -> list[int]:
    """A seed per row of (B, max_new_tokens) draws, from its first uniform: a row's own, whatever its
    batch."""
    return (draws[:, 0].double().cpu() * SEED_RANGE).long().tolist()


def padded(rows: list[list[int]], eos_token_id: int, pad_token_id: int) -> torch.Tensor:
    """(B, T) of token rows, T the longest, `pad_token_id` after each row's first EOS and where it ends."""
    tokens = torch.full((len(rows), max(map(len, rows))), pad_token_id, dtype=torch.long)
    for i, row in enumerate(rows):
        tokens[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return trim(tokens, eos_token_id, pad_token_id)


def require_vllm() -> None:
    """A UserError, without importing vllm, where the vllm backend cannot run: vllm not installed, no
    CUDA device, or several processes (torchrun)."""
    if importlib.util.find_spec("vllm") is None:
        raise UserError(f"--generation-backend vllm: vllm is not installed here; {VLLM_INSTALL}")
    if not torch.cuda.is_available():
        raise UserError(
            f"--generation-backend vllm: vllm needs a CUDA GPU and none is visible here; {VLLM_INSTALL}"
        )
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise UserError(
            "--generation-backend vllm runs one engine beside one trainer process; under torchrun "
            "use --generation-backend sampler"
        )


BACKENDS: dict[str, Callable[..., GenerationBackend]] = {"sampler": SamplerBackend, "vllm": VLLMBackend}
# What a config can check before any model loads: a backend's requirements, by name.
REQUIREMENTS: dict[str, Callable[[], None]] = {"vllm": require_vllm}


def check_backend(name: str) -> None:
    """A UserError now, before any model loads, where backend `name` cannot run on this machine."""
    REQUIREMENTS.get(name, lambda: None)()


def make_backend(name: str, model: torch.nn.Module, tokenizer) -> GenerationBackend:
    return BACKENDS[name](model, tokenizer)
