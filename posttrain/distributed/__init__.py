"""Data parallelism on PyTorch's own engines: torchrun, DDP and FSDP2, on CPU (gloo) or GPUs (nccl).

    torchrun --nproc-per-node 2 -m posttrain sft ... [--fsdp]

`setup(cfg)` reads torchrun's environment once (RANK, WORLD_SIZE, LOCAL_RANK): outside torchrun it
is one process and every helper below is the identity. Under torchrun it starts the process group
(nccl when CUDA is there, else gloo) and returns this rank's `Dist`.

How a stage uses it, and why each step gives a single process's answer on the same global batch:
- every rank builds the same model from the same seed and sees the same global batch; `share`
  hands it its slice, and every rank takes the same number of forward/backward passes (a rank
  short of examples repeats one with weight 0), since DDP's and FSDP2's collectives must match;
- a micro-batch's loss divides by the *global batch's* count, as in one process, and is multiplied
  by the world size, which DDP's and FSDP2's gradient averaging divides back out: the reduced
  gradient is the single process's sum;
- gradients are reduced once per optimizer step (`syncing(module, last)`), then clipped and
  stepped identically on every rank (FSDP2: each on its shard);
- PPO's rollouts are generated on each rank's slice and gathered (`gather_rows`), so whitening,
  GAE and the KL controller see the whole batch;
- checkpoints hold the full (gathered) model and optimizer state keyed by parameter name
  (`model_state`, `optimizer_state`), so a run saved by N ranks resumes on M.
Metrics, checkpoints and the final model are written by rank 0; other ranks log warnings only.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from typing import Any

import torch

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    fsdp: bool = False
    dtype: str = "fp32"
    device: torch.device = torch.device("cpu")

    @property
    def on(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    # --- work: each rank's share, with equal pass counts --------------------------------------
    def share(self, items: list) -> list:
        """This rank's slice of a global batch (every world-th item), in order."""
        return items[self.rank :: self.world]

    def block(self, n: int) -> slice:
        """This rank's contiguous block of n rows (n a multiple of the world size)."""
        size = n // self.world
        return slice(self.rank * size, (self.rank + 1) * size)

    def micro_batches(self, items: list, micro_batch: int) -> list[tuple[list, float]]:
        """This rank's micro-batches of a global batch, each with its loss weight: 1, or 0 for a filler
        (a repeat of the batch's first item) that keeps every rank's pass count equal."""
        mine = self.share(items)
        most = -(-len(items[0 :: self.world]) // micro_batch)  # rank 0 holds the largest share
        chunks = [(mine[i : i + micro_batch], 1.0) for i in range(0, len(mine), micro_batch)]
        return chunks + [([items[0]], 0.0)] * (most - len(chunks))

    @property
    def loss_scale(self) -> float:
        """What a micro-batch's loss (already over the global count) is multiplied by: DDP and FSDP2
        average the ranks' gradients, and the step needs their sum."""
        return float(self.world)

    # --- models ------------------------------------------------------------------------------
    def wrap(self, module: torch.nn.Module, layers: list[torch.nn.Module] | None = None) -> torch.nn.Module:
        """What a training forward calls: `module` itself in one process; DDP(module); or, with --fsdp,
        `module` sharded in place by `fully_shard` (each of `layers` first: its own all-gather unit)."""
        if not self.on:
            return module
        if self.fsdp:
            from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

            mp = (
                MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
                if self.dtype == "bf16" and self.device.type == "cuda"
                else MixedPrecisionPolicy()
            )
            for layer in layers if layers is not None else transformer_layers(module):
                fully_shard(layer, mp_policy=mp)
            fully_shard(module, mp_policy=mp)
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        # no buffer broadcast: it would be a collective in every forward, generation's included
        return DistributedDataParallel(module, device_ids=ids, forward_sync_buffers=False)

    def local(self, trainer: torch.nn.Module) -> torch.nn.Module:
        """The module to call outside training (evaluation, generation): DDP's inner module; FSDP2's
        sharded module itself, inside `gathered`."""
        return trainer.module if self.on and not self.fsdp else trainer

    @contextlib.contextmanager
    def syncing(self, module: torch.nn.Module, last: bool):
        """Reduce gradients in this backward only when it is the step's last (`last`)."""
        if not self.on or last:
            if self.on and self.fsdp:
                module.set_requires_gradient_sync(True)
            yield
        elif self.fsdp:
            module.set_requires_gradient_sync(False)
            yield
        else:
            with module.no_sync():
                yield

    @contextlib.contextmanager
    def gathered(self, *modules: torch.nn.Module):
        """Forwards with no collectives, for generation and measurements that ranks take different
        numbers of (each rank decodes until its own rows end): FSDP2 modules are unsharded for the
        duration, and no per-forward reshard happens. A no-op without FSDP."""
        from torch.distributed.fsdp import FSDPModule

        units = (
            [m for module in modules for m in module.modules() if isinstance(m, FSDPModule)]
            if self.fsdp
            else []
        )
        for unit in units:
            unit.set_reshard_after_forward(False, recurse=False)
            unit.unshard()
        try:
            yield
        finally:
            roots = {id(module) for module in modules}
            for unit in units:
                unit.reshard()
                unit.set_reshard_after_forward(id(unit) not in roots, recurse=False)  # roots keep theirs

    def put(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A batch's tensors on this rank's device (through pinned memory to a GPU)."""
        if self.device.type == "cpu":
            return batch
        return {k: v.pin_memory().to(self.device, non_blocking=True) for k, v in batch.items()}

    def autocast(self):
        """bf16 matmuls under autocast for --dtype bf16 (weights stay fp32); nothing otherwise."""
        if self.dtype != "bf16":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def cast(self, module: torch.nn.Module) -> torch.nn.Module:
        """The weights' dtype (fp64 for --dtype fp64; fp32 master weights otherwise), on this rank's
        device."""
        module = module.double() if self.dtype == "fp64" else module
        return module.to(self.device)

    # --- collectives -------------------------------------------------------------------------
    def barrier(self) -> None:
        if self.on:
            torch.distributed.barrier()

    def sum(self, values: dict[str, float]) -> dict[str, float]:
        """The ranks' sums of a dict of numbers (the same keys on every rank)."""
        if not self.on or not values:
            return values
        keys = sorted(values)
        t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
        torch.distributed.all_reduce(t)
        return dict(zip(keys, t.tolist()))

    def gather_objects(self, obj: Any) -> list[Any]:
        """Every rank's `obj`, in rank order (pickled: for small things)."""
        if not self.on:
            return [obj]
        out: list[Any] = [None] * self.world
        torch.distributed.all_gather_object(out, obj)
        return out

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's `obj` on every rank."""
        if not self.on:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    # --- checkpoints -------------------------------------------------------------------------
    def model_state(self, module: torch.nn.Module) -> dict[str, torch.Tensor]:
        """The full state dict (CPU tensors) on rank 0 ({} on the others); every rank must call it."""
        if not self.on:
            return {k: v.detach().cpu() for k, v in module.state_dict().items()}
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        full = get_model_state_dict(module, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        tied = tied_names(
            module
        )  # gathered as separate copies: keep each shared weight once, as one process does
        return {k: v for k, v in full.items() if k not in tied}

    def load_model_state(self, module: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
        """Load a full state dict read by rank 0 (the others pass {}) into every rank's module."""
        if not self.on:
            missing = module.load_state_dict(state, strict=False).missing_keys
            check_tied(module, missing)
            return
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        set_model_state_dict(
            module,
            state,
            options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True, strict=False),
        )

    def optimizer_state(self, module: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
        """The optimizer's full state keyed by parameter name (any world size can load it); {} off rank 0."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict

        return get_optimizer_state_dict(
            module, optimizer, options=StateDictOptions(full_state_dict=True, cpu_offload=self.on)
        )

    def load_optimizer_state(
        self, module: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict
    ) -> None:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        set_optimizer_state_dict(
            module,
            optimizer,
            state,
            options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=self.on),
        )


def tied_names(module: torch.nn.Module) -> set[str]:
    """The second and later names of a shared parameter (an output layer tied to the embeddings)."""
    return {name for name, _ in module.named_parameters(remove_duplicate=False)} - {
        name for name, _ in module.named_parameters()
    }


def check_tied(module: torch.nn.Module, missing: list[str]) -> None:
    """A checkpoint leaves out tied weights (safetensors stores a shared tensor once); anything else missing
    is an error."""
    shared = tied_names(module)
    left = [k for k in missing if k not in shared]
    if left:
        raise RuntimeError(f"checkpoint is missing {len(left)} weights, e.g. {left[:3]}")


def transformer_layers(module: torch.nn.Module) -> list[torch.nn.Module]:
    """The blocks FSDP2 shards one by one: modules of the classes the model names as not to be split
    (`_no_split_modules`, e.g. LlamaDecoderLayer, GPT2Block)."""
    names = set()
    for m in module.modules():
        names |= set(getattr(m, "_no_split_modules", None) or [])
    return [m for m in module.modules() if type(m).__name__ in names]


def setup(cfg) -> Dist:
    """This process's place in a torchrun job (one process outside torchrun), from the stage config's
    --fsdp and --dtype; starts the process group, seeds, and quiets the other ranks' logs."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    fsdp, dtype = getattr(cfg, "fsdp", False), getattr(cfg, "dtype", "fp32")
    cuda = torch.cuda.is_available()
    if world == 1:
        if fsdp:
            log.warning("--fsdp has no effect in one process; launch with torchrun --nproc-per-node N")
        return Dist(dtype=dtype, device=torch.device("cuda" if cuda else "cpu"))
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if cuda else "gloo")
    if rank:
        logging.getLogger("posttrain").setLevel(logging.WARNING)
    return Dist(rank=rank, world=world, fsdp=fsdp, dtype=dtype, device=device)
