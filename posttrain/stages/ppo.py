"""`posttrain ppo`: optimise the SFT policy against the reward model with PPO (or PPO-ptx), RLOO or GRPO.

    posttrain ppo --policy runs/demo/sft --reward runs/demo/rm --prompts runs/world/prompts_ppo.jsonl \\
                  --out runs/demo/ppo [--ptx runs/world/corpus.jsonl --ptx-coef 0.1]
    posttrain ppo ... --algorithm rloo|grpo [--group-size 4] [--reward verifier]

Step 3 of InstructGPT (Ouyang et al. 2022, section 3.5, eq. 2), with the details of Ziegler et al.
2019 and lm-human-preferences: bandit episodes (prompt -> whole response); reward = the reward
model's normalised score at the last token minus beta * (log pi - log pi_SFT) on every token
(fixed or adaptive beta); value function initialised from the reward model; GAE with gamma = 1,
lambda = 0.95; whitened advantages; clipped policy and value losses, each a mean over all response
tokens of a minibatch (micro-batching only sets memory use); several epochs of shuffled
minibatches. PPO-ptx adds gamma_ptx times the pretraining LM loss to every minibatch.

EOS and truncation: a response ends at its first EOS, which belongs to it (the policy chose to
stop). A response cut at --max-new-tokens keeps its reward-model score unless
--missing-eos-penalty is set, which subtracts that much from it (as in TRL).

Critic-free (`--algorithm rloo|grpo`): no value function (none is loaded or trained); each step takes
rollout_batch / K prompts (K = --group-size) and samples K responses to each, and each response's
advantage, one number broadcast to all its tokens, compares it with the others to its prompt. Rollout,
scoring, the clipped surrogate over tokens, PPO-ptx, checkpoints and metrics are PPO's.
- RLOO (Ahmadian et al. 2024, "Back to Basics"; as TRL's RLOOTrainer): the KL is in the reward, at the
  sequence level: R = score - beta * sum_t (log pi - log pi_ref); advantage = R minus the mean R of the
  prompt's other K - 1 samples, not whitened. The paper's RLOO is one on-policy update per batch: pass
  --ppo-epochs 1 --minibatches 1 for it (the ratio is then 1 and the surrogate is REINFORCE); the
  defaults stay the recipe's, and more epochs reuse the batch as PPO does, clipped.
- GRPO (Shao et al. 2024, DeepSeekMath, eq. 3): advantage = (score - group mean) / (group sample std +
  1e-4) from the raw scores; the KL is a loss term instead, beta times the k3 estimate
  (pi_ref/pi - 1 - log(pi_ref/pi), Schulman 2020) averaged over the minibatch's response tokens, like the
  surrogate (DeepSeekMath averages per sequence first; posttrain keeps one token mean for both terms).
--kl-coef is beta for all three, and --kl-target adapts it for all three from objective/kl.

`--reward verifier` (RLOO and GRPO only: there is no reward model to start PPO's value function from)
scores a response 1 or 0 by the built-in world's program check of the answer (posttrain/world/verifier.py:
arithmetic, list_ops and format prompts; no style factors), never by the gold scorer's judgement. Prompts
of other families have no such check: they are left out with a warning giving the count, and a prompt
file with none of those families, or not of the built-in world, is refused.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from posttrain import distributed
from posttrain.algorithms import (
    AdaptiveKLController,
    FixedKLController,
    explained_variance,
    gae,
    grpo_advantages,
    kl_penalty,
    kl_shaped_rewards,
    masked_mean,
    masked_whiten,
    policy_loss,
    rloo_advantages,
    sequence_kl_rewards,
    token_mean,
    value_loss,
)
from posttrain.config import (
    Adapters,
    Cadence,
    Length,
    ModelOptions,
    Options,
    Resumable,
    Sampling,
    Scaling,
    WorldRef,
    option,
    tuned,
)
from posttrain.data.corpus import file_sha256
from posttrain.distributed import Dist
from posttrain.errors import UserError
from posttrain.models.adapters import final_model, is_lora
from posttrain.models.checkpoint import RunDir
from posttrain.models.policy import episode_inputs, response_logprobs, token_values
from posttrain.recipes import SMALL
from posttrain.training.lm import batch_indices, heldout_loss, lm_loss
from posttrain.training.metrics import read_metrics, resume_point
from posttrain.training.perf import Throughput, forward_flops, matmul_parameters, perf_metrics, training_flops
from posttrain.training.rollout import (
    Rollouts,
    load_models,
    load_prompts,
    load_ptx,
    rollout,
    sample_table,
    world_for,
)
from posttrain.training.step import adamw, only_main

log = logging.getLogger(__name__)
ALGORITHMS = ("ppo", "rloo", "grpo")
GENERATION_BACKENDS = ("sampler", "vllm")
VERIFIER = "verifier"  # --reward verifier: the world's program check in place of a reward model


@dataclass(kw_only=True)
class PPOSettings(Options, tuned(Sampling, max_new_tokens=SMALL.max_new_tokens)):
    """PPO's hyper-parameters (defaults: the small world's measured recipe); the loop sets them every
    round."""

    lr: float = option(SMALL.ppo_lr, help="policy learning rate (AdamW, constant)", gt=0)
    value_lr: float | None = option(None, help="value function learning rate (default: --lr)", gt=0)
    kl_coef: float = option(SMALL.kl_coef, help="beta: per-token KL penalty to the reference policy", ge=0)
    kl_target: float | None = option(
        None,
        help="adaptive beta: target KL per episode (Ziegler et al. 2019); fixed beta when not given",
        gt=0,
    )
    kl_horizon: int = option(10000, help="adaptive beta: horizon in episodes", ge=1)
    ptx_coef: float = option(
        SMALL.ptx_coef,
        help="gamma_ptx: weight of the pretraining LM loss (mean per token) in PPO-ptx (with --ptx)",
        ge=0,
    )
    ptx_batch: int = option(8, help="pretraining rows per optimizer step in PPO-ptx", ge=1)
    ptx_seq_len: int = option(128, help="tokens per pretraining row", ge=2)
    rollout_batch: int = option(SMALL.rollout_batch, help="episodes (prompts) per PPO step", ge=1)
    minibatches: int = option(
        SMALL.minibatches, help="minibatches per PPO epoch (minibatch = rollout_batch / minibatches)", ge=1
    )
    micro_batch: int = option(
        SMALL.micro_batch,
        help="episodes per forward/backward pass (gradient accumulation over a minibatch); a memory setting",
        ge=1,
    )
    ppo_epochs: int = option(SMALL.ppo_epochs, help="passes over each rollout batch", ge=1)
    clip_range: float = option(0.2, help="PPO ratio clip epsilon", gt=0)
    value_clip: float = option(0.2, help="value clip epsilon (around the rollout's values)", gt=0)
    vf_coef: float = option(0.1, help="weight of the value loss", ge=0)
    gamma: float = option(1.0, help="discount (1: bandit episodes are short)", ge=0, le=1)
    lam: float = option(0.95, help="GAE lambda", ge=0, le=1)
    missing_eos_penalty: float = option(
        0.0, help="subtracted from the score of a response cut at --max-new-tokens", ge=0
    )
    algorithm: str = option(
        "ppo",
        help="ppo: a value function and GAE; rloo / grpo: critic-free, --group-size "
        "samples per prompt, each scored against the others (leave-one-out mean; "
        "group mean and std)",
        choices=ALGORITHMS,
    )
    group_size: int = option(
        4, help="rloo / grpo: K, samples per prompt; a step takes rollout_batch / K prompts", ge=2
    )

    @property
    def critic_free(self) -> bool:
        return self.algorithm != "ppo"

    @property
    def prompts_per_step(self) -> int:
        return self.rollout_batch // self.group_size if self.critic_free else self.rollout_batch

    @property
    def minibatch(self) -> int:
        return self.rollout_batch // self.minibatches

    @property
    def grad_accum(self) -> int:
        return self.minibatch // self.micro_batch

    def check(self) -> None:
        super().check()
        if self.rollout_batch % self.minibatches or self.minibatch % self.micro_batch:
            raise UserError(
                f"rollout_batch = minibatches x micro_batch x grad_accum must hold: --rollout-batch "
                f"{self.rollout_batch} / --minibatches {self.minibatches} = "
                f"{self.rollout_batch / self.minibatches:g} episodes per minibatch, which --micro-batch "
                f"{self.micro_batch} must divide; e.g. --rollout-batch 64 --minibatches 4 --micro-batch 8"
            )
        if self.algorithm not in ALGORITHMS:
            raise UserError(f"--algorithm {self.algorithm!r} is not one of {', '.join(ALGORITHMS)}")
        if self.critic_free and self.rollout_batch % self.group_size:
            raise UserError(
                f"--algorithm {self.algorithm} samples --group-size {self.group_size} responses per "
                f"prompt, which must divide --rollout-batch {self.rollout_batch} (episodes per step); "
                f"e.g. --rollout-batch {max(1, self.rollout_batch // self.group_size) * self.group_size}"
            )


@dataclass(kw_only=True)
class PPOConfig(
    PPOSettings,
    Length,
    tuned(Cadence, eval_every=10, save_every=10),
    WorldRef,
    ModelOptions,
    Scaling,
    Adapters,
    Resumable,
):
    policy: str = option(
        help="the policy to optimise: the SFT model, or a later round's best policy", required=True
    )
    reference: str | None = option(
        None, help="the frozen KL reference (default: --policy; the loop passes SFT)"
    )
    reward: str = option(
        help="reward model run directory (posttrain rm), which for --algorithm ppo also "
        "initialises the value function; or `verifier`: the built-in world's program check of "
        "the answer, 1 or 0 (arithmetic, list_ops, format prompts; rloo / grpo only; a "
        "directory named verifier is ./verifier)",
        required=True,
    )
    prompts: Path = option(help="PPO prompts: conversation JSONL ending with a user turn", required=True)
    out: Path = option(help="run directory to create", required=True)
    ptx: Path | None = option(None, help="pretraining corpus (JSONL or .txt) for PPO-ptx; off when not given")
    heldout_corpus: Path | None = option(
        None,
        help="held-out pretraining text: its LM loss is logged as alignment/heldout_loss (the alignment tax)",
    )
    sample_every: int = option(10, help="steps between printed tables of sample responses", ge=1)
    seed: int = option(0, help="seed for prompt order, sampling and minibatch shuffles", ge=0)
    generation_backend: str = option(
        "sampler",
        help="what generates the rollouts: sampler (posttrain's own, CPU "
        "and GPU) or vllm (GPU, the posttrain[vllm] extra; the policy's "
        "weights are loaded into it after every step)",
        choices=GENERATION_BACKENDS,
    )

    def check(self) -> None:
        super().check()
        if self.reward == VERIFIER and not self.critic_free:
            raise UserError(
                "--reward verifier with --algorithm ppo: PPO's value function starts from a reward "
                "model, and the verifier is a program; use --algorithm rloo or --algorithm grpo "
                "(critic-free) with it, or pass a reward model run directory to --reward"
            )


def ppo(
    cfg: PPOConfig,
    on_step: Callable[[int, int, dict], None] = lambda *a: None,
    on_samples: Callable[[int, list[dict]], None] = lambda *a: None,
) -> dict:
    """Run PPO; returns the final metrics. `on_samples(step, rows)` receives a few rollouts to show."""
    cfg.check()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    d = distributed.setup(cfg)
    check_world_size(cfg, d)
    on_step, on_samples = only_main(d, on_step), only_main(d, on_samples)
    run = RunDir(cfg.out, resume=cfg.resume, force=cfg.force, config=cfg, dist=d)
    prompts, world, verifier = stage_prompts(cfg)
    n = cfg.prompts_per_step
    m = load_models(cfg, verifier, d)
    ptx_rows = load_ptx(cfg.ptx, m.tokenizer, cfg.ptx_seq_len) if cfg.ptx else None
    # the first 64 rows: enough to see the tax move, cheap enough to measure every --eval-every steps
    heldout_rows = (
        load_ptx(cfg.heldout_corpus, m.tokenizer, cfg.ptx_seq_len, limit=64) if cfg.heldout_corpus else None
    )
    run.begin()
    params = [{"params": m.policy.parameters(), "lr": cfg.lr}]
    if m.value is not None:
        params.append({"params": m.value.parameters(), "lr": cfg.value_lr or cfg.lr})
    optimizer = adamw(params)
    kl_ctl = (
        AdaptiveKLController(cfg.kl_coef, cfg.kl_target, cfg.kl_horizon)
        if cfg.kl_target
        else FixedKLController(cfg.kl_coef)
    )
    total = cfg.total_steps(len(prompts) / n)
    start, metrics = resume_point(run, cfg.resume, m.trained, optimizer)
    perf = Throughput(m.policy, d.device, d.world)
    if cfg.resume:
        kl_ctl.value = run.restored.get("kl_coef", kl_ctl.value)
    log.info(
        "%s%s on %d prompts for %d steps of %d episodes",
        cfg.algorithm.upper(),
        "-ptx" if ptx_rows is not None else "",
        len(prompts),
        total,
        cfg.rollout_batch,
    )

    step, last = start, {}
    for step in range(start + 1, total + 1):
        began = time.monotonic()
        # every step a full batch: consecutive slices of a seeded permutation per pass over the prompts;
        # RLOO and GRPO take each prompt K times in a row (a group), PPO once
        picked = batch_indices(len(prompts), n, step - 1, cfg.seed).tolist()
        batch = [prompts[i] for i in picked for _ in range(cfg.group_size if cfg.critic_free else 1)]
        # 1. rollout: sample responses, logprobs of policy and reference, values, RM (or verifier) scores
        r = rollout(m, batch, cfg, seed=cfg.seed * 1_000_003 + step, dist=d)
        group = {}
        if cfg.algorithm == "ppo":
            # 2. KL-shaped rewards: score at the last token, -beta * (log pi - log pi_ref) on every token
            rewards = kl_shaped_rewards(r.scores, r.logprobs, r.ref_logprobs, r.mask, kl_ctl.value)
            # 3. advantages (GAE, whitened) and returns
            advantages, r.returns = gae(rewards, r.values, r.mask, cfg.gamma, cfg.lam)
            r.advantages = masked_whiten(advantages, r.mask)
        else:
            # 2-3. each response against the others to its prompt (RLOO: score - beta * KL; GRPO: score)
            advantages = group_advantages(r, kl_ctl.value, cfg)  # (B,) one per response
            r.advantages = advantages.unsqueeze(1) * r.mask  # (B, T) on each of its tokens
            group = group_metrics(advantages, r.scores, cfg)
        # 4. PPO epochs over shuffled minibatches (plus the pretraining loss in PPO-ptx; GRPO's KL term)
        train = ppo_epochs(m, optimizer, r, ptx_rows, cfg, step, beta=kl_ctl.value, dist=d)
        m.backend.load_weights(m.policy)  # the next rollout samples from the updated policy
        seconds = time.monotonic() - began
        last = {
            **rollout_metrics(r, kl_ctl.value, world, batch),
            **train,
            **group,
            "time/seconds_per_step": seconds,
            **perf_metrics(step_flops(m, r, cfg, ptx_rows is not None), seconds, perf.peak),
        }
        kl_ctl.update(last["objective/kl"], cfg.rollout_batch)
        if heldout_rows is not None and (step % cfg.eval_every == 0 or step == total):
            with d.gathered(m.policy):
                last["alignment/heldout_loss"] = heldout_loss(m.policy, heldout_rows)
        metrics.log(step, last)
        on_step(step, total, last)
        if d.main and (step % cfg.sample_every == 0 or step == total):
            on_samples(step, sample_table(r, batch, world, run.partial / "samples.jsonl", step))
        if step % cfg.save_every == 0 and step < total:
            run.save(step, m.trained, optimizer, extra={"kl_coef": kl_ctl.value})
    metrics.close()
    if (
        not last and d.main
    ):  # resumed at the final step: nothing ran, the log's last record is the final state
        last = {k: v for k, v in read_metrics(metrics.path)[-1].items() if k != "step"}
    summary = {**last, "steps": step, "prompts": len(prompts)}
    run.finish(final_model(m.policy, cfg.lora_save), m.tokenizer, manifest(cfg, summary, kl_ctl.value))
    return summary


def check_world_size(cfg: PPOConfig, dist: Dist) -> None:
    """Under torchrun each rank samples an equal block of every rollout batch and trains on an equal share
    of every minibatch (and of the PPO-ptx rows): the world size must divide them."""
    if not dist.on:
        return
    sizes = {
        "--rollout-batch": cfg.rollout_batch,
        "minibatch (--rollout-batch / --minibatches)": cfg.minibatch,
    }
    if cfg.ptx:
        sizes["--ptx-batch"] = cfg.ptx_batch
    bad = [f"{name} {size}" for name, size in sizes.items() if size % dist.world]
    if bad:
        raise UserError(
            f"{dist.world} processes share each batch equally, and {', '.join(bad)} "
            f"{'is' if len(bad) == 1 else 'are'} not a multiple of {dist.world}; pick sizes the "
            "world size divides (e.g. --rollout-batch 64 --minibatches 4 --ptx-batch 8)"
        )


def stage_prompts(cfg: PPOConfig) -> tuple[list[dict], object, Callable[[dict, str], float] | None]:
    """The prompts to train on, their built-in world (None for other prompts) and, with --reward verifier, the
    program check that scores responses to them; refused when there are fewer than a step takes."""
    prompts = load_prompts(cfg.prompts)
    world = world_for(prompts, cfg.world_seed, cfg.scale)
    verifier = None
    if cfg.reward == VERIFIER:
        prompts, verifier = verifiable_prompts(prompts, world, cfg.prompts)
    if len(prompts) < cfg.prompts_per_step:
        per = (
            f" (--rollout-batch {cfg.rollout_batch} / --group-size {cfg.group_size})"
            if cfg.critic_free
            else ""
        )
        raise UserError(
            f"{cfg.prompts} has {len(prompts)} {'checkable ' if verifier else ''}prompts, fewer than the "
            f"{cfg.prompts_per_step} a step takes{per}; lower --rollout-batch or add prompts"
        )
    return prompts, world, verifier


def verifiable_prompts(
    prompts: list[dict], world, path: Path
) -> tuple[list[dict], Callable[[dict, str], float]]:
    """The prompts of families a program can check, and that check (posttrain.world.verify) for their
    world."""
    from posttrain.world.verifier import CHECKABLE, verifiable, verify

    if world is None:
        raise UserError(
            f"--reward verifier checks answers to the built-in world's prompts, and {path} has prompts "
            "without a world task (meta.task); score them with a reward model (--reward RUN/rm)"
        )
    kept = [p for p in prompts if verifiable(p)]
    if not kept:
        raise UserError(
            f"{path}: none of its {len(prompts)} prompts is of a family with a program check "
            f"({', '.join(CHECKABLE)}), so --reward verifier cannot score them; use a reward model"
        )
    if len(kept) < len(prompts):
        log.warning(
            "--reward verifier: training on the %d of %d prompts in %s whose family has a program check "
            "(%s); %d others left out",
            len(kept),
            len(prompts),
            path,
            ", ".join(CHECKABLE),
            len(prompts) - len(kept),
        )
    return kept, functools.partial(verify, world)


def group_advantages(r: Rollouts, beta: float, cfg: PPOSettings) -> torch.Tensor:
    """(B,) RLOO's or GRPO's advantage of each response (the module docstring says which reward, which KL)."""
    if cfg.algorithm == "rloo":
        rewards = sequence_kl_rewards(r.scores, r.logprobs, r.ref_logprobs, r.mask, beta)  # (B,)
        return rloo_advantages(rewards, cfg.group_size)
    return grpo_advantages(r.scores, cfg.group_size)


def ppo_epochs(
    m, optimizer, r: Rollouts, ptx_rows, cfg: PPOConfig, step: int, beta: float = 0.0, dist: Dist = Dist()
) -> dict:
    """Several epochs of clipped PPO updates over shuffled minibatches of one rollout batch."""
    m.policy.eval()  # no dropout: the ratio must compare the same function before and after
    if m.value is not None:
        m.value.eval()
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    ptx_g = torch.Generator().manual_seed(cfg.seed * 7_919 + step)
    sums: dict[str, float] = {}
    updates = 0
    for _ in range(cfg.ppo_epochs):
        perm = torch.randperm(cfg.rollout_batch, generator=g)
        for mb in perm.split(cfg.minibatch):
            optimizer.zero_grad(set_to_none=True)
            ptx = (
                None
                if ptx_rows is None
                else ptx_rows[torch.randint(len(ptx_rows), (cfg.ptx_batch,), generator=ptx_g)]
            )
            stats = minibatch_backward(m, r, mb, ptx, cfg, beta=beta, dist=dist)
            torch.nn.utils.clip_grad_norm_(m.trained.parameters(), 1.0)
            optimizer.step()
            updates += 1
            for k, v in stats.items():
                sums[k] = sums.get(k, 0.0) + v
    return {k: v / updates for k, v in sums.items()}


def minibatch_backward(
    m,
    r: Rollouts,
    rows: torch.Tensor,
    ptx: torch.Tensor | None,
    cfg: PPOSettings,
    beta: float = 0.0,
    dist: Dist = Dist(),
) -> dict[str, float]:
    """Backpropagate the loss of the minibatch `rows` of r, micro-batch by micro-batch; returns its metrics.

    The policy and value losses (and their stats) are means over all response tokens of the minibatch:
    each micro-batch adds its token sums divided by the minibatch's token count, known from the rollout
    masks before any backward pass, so --micro-batch changes memory use, not the update. PPO-ptx adds
    gamma_ptx times the LM loss's mean over every token of the `ptx` rows (all of one length). Without a
    value function (RLOO, GRPO) there is no value loss; GRPO adds beta times its k3 KL term.

    Under torchrun each rank takes an equal share of the minibatch's episodes and ptx rows, and the ranks'
    gradients are reduced in the last backward, a policy (and value) micro-batch: the PPO-ptx rows go first.
    """
    n_tokens = r.mask[rows].sum()
    stats: dict[str, float] = {}
    if ptx is not None:
        mine = dist.share(ptx)
        stats["ppo/ptx_loss"] = 0.0
        for chunk in mine.split(cfg.micro_batch):
            with dist.syncing(m.train_policy, last=False):
                with dist.autocast():
                    loss = lm_loss(m.train_policy, dist.put({"rows": chunk})["rows"]) * len(chunk) / len(ptx)
                (
                    cfg.ptx_coef * dist.loss_scale * loss
                ).backward()  # equal rows: the row share is the token share
            stats["ppo/ptx_loss"] += loss.item()
    values, returns = [], []
    micros = dist.share(by_length(r, rows)).split(cfg.micro_batch)
    for i, micro in enumerate(micros):
        with contextlib.ExitStack() as syncing:
            for trainer in (m.train_policy, m.train_value):
                if trainer is not None:
                    syncing.enter_context(dist.syncing(trainer, last=i == len(micros) - 1))
            found, (v, ret) = micro_step(
                m, r.select(micro).to(dist.device), cfg, n_tokens.to(dist.device), beta, dist
            )
        values.append(v)
        returns.append(ret)
        for k, x in found.items():
            stats[k] = stats.get(k, 0.0) + x
    stats = dist.sum(stats)
    if m.value is not None:
        values = torch.cat(dist.gather_objects(torch.cat(values).cpu()))  # every rank's, in rank order
        returns = torch.cat(dist.gather_objects(torch.cat(returns).cpu()))
        stats["ppo/value/explained_var"] = explained_variance(values, returns, torch.ones_like(values)).item()
    return stats


def by_length(r: Rollouts, rows: torch.Tensor) -> torch.Tensor:
    """The minibatch's episodes ordered by response, then prompt, length: each micro-batch is trimmed to its
    longest row (`Rollouts.select`), so rows of like length together leave little padding to forward and
    backpropagate. The loss is a sum over tokens, so the order changes the update only by rounding."""
    length = r.mask[rows].sum(1) * (r.query.size(1) + 1) + r.query_mask[rows].sum(1)  # (n,)
    return rows[torch.sort(length, stable=True).indices]


def micro_step(
    m, r: Rollouts, cfg: PPOSettings, n_tokens: torch.Tensor, beta: float = 0.0, dist: Dist = Dist()
) -> tuple[dict[str, float], tuple[torch.Tensor | None, torch.Tensor | None]]:
    """Forward the policy (and the value function, when there is one) on a micro-batch and backpropagate its
    share of the minibatch loss (token sums over n_tokens, the minibatch's count); returns its shares of the
    metrics, and V and the returns on its real tokens (explained variance is not a sum: it is computed over
    the whole minibatch; None, None without a value function)."""
    inputs = episode_inputs(r.query, r.query_mask, r.response, r.mask)
    P = r.query.size(1)
    with dist.autocast():
        logprobs, entropy = response_logprobs(m.train_policy, inputs, P, cfg.temperature)
    pg_loss, pg = policy_loss(logprobs, r.logprobs, r.advantages, r.mask, cfg.clip_range, n_tokens)
    stats = {
        "ppo/loss/policy": pg_loss.item(),
        "ppo/policy/clipfrac": pg["clipfrac"].item(),
        "ppo/policy/approx_kl": pg["approx_kl"].item(),
        "ppo/policy/entropy": token_mean(entropy, r.mask, n_tokens).item(),
    }
    if m.value is None:
        loss = pg_loss
        if cfg.algorithm == "grpo":  # DeepSeekMath eq. 3: + beta * KL, the k3 estimate per token
            kl = token_mean(kl_penalty(logprobs, r.ref_logprobs, "k3"), r.mask, n_tokens)
            loss = loss + beta * kl
            stats["grpo/kl"] = kl.item()
        (loss * dist.loss_scale).backward()
        return stats, (None, None)
    with dist.autocast():
        values = token_values(m.train_value, inputs, P)
    vf_loss, vf = value_loss(values, r.values, r.returns, r.mask, cfg.value_clip, n_tokens)
    ((pg_loss + cfg.vf_coef * vf_loss) * dist.loss_scale).backward()
    real = r.mask.bool()
    return (
        {**stats, "ppo/loss/value": vf_loss.item(), "ppo/value/clipfrac": vf["clipfrac"].item()},
        (values.detach()[real], r.returns[real]),
    )


def step_flops(m, r: Rollouts, cfg: PPOSettings, ptx: bool) -> float:
    """A step's FLOPs (posttrain.training.perf's approximations) over its real tokens: the rollout's sampling
    (the policy's forward over prompt and response), reference, value and reward-model forwards, then every
    PPO epoch's forward and backward of the policy and the value function, and the PPO-ptx rows. The policy's
    LM head runs only where a response token is predicted (the sampler's and `response_logprobs`'
    `logits_to_keep`), not over the prompt: counting it there over-counted a step (twice over on a model whose
    head is most of its weights)."""
    tokens, answers = int(r.query_mask.sum() + r.mask.sum()), int(r.mask.sum())
    n = {
        name: matmul_parameters(model)
        for name, model in (("policy", m.policy), ("value", m.value), ("reward", m.reward and m.reward.model))
        if model is not None
    }
    head = m.policy.get_output_embeddings().weight.numel()

    def policy(count):  # the backbone over every token, the LM head over the response's
        return count(n["policy"] - head, tokens) + count(head, answers)

    flops = policy(forward_flops) * (1 + (m.ref is not None or is_lora(m.policy)))
    flops += forward_flops(n.get("value", 0) + n.get("reward", 0), tokens)
    flops += cfg.ppo_epochs * (policy(training_flops) + training_flops(n.get("value", 0), tokens))
    if ptx:
        flops += (
            cfg.ppo_epochs * cfg.minibatches * training_flops(n["policy"], cfg.ptx_batch * cfg.ptx_seq_len)
        )
    return flops


def rollout_metrics(r: Rollouts, beta: float, world, batch: list[dict]) -> dict:
    kl = ((r.logprobs - r.ref_logprobs) * r.mask).sum(1)  # (B,)
    out = {
        "objective/score": r.scores.mean().item(),
        "objective/kl": kl.mean().item(),
        "objective/non_score_reward": (-beta * kl).mean().item(),
        "objective/rlhf_reward": (r.scores - beta * kl).mean().item(),
        "objective/entropy": (r.entropy * r.mask).sum(1).mean().item(),
        "objective/kl_coef": beta,
    }
    if r.returns is not None:
        out["ppo/returns/mean"] = masked_mean(r.returns, r.mask).item()
    out.update(
        {
            "ppo/response_length": r.mask.sum(1).float().mean().item(),
            "ppo/eos_rate": r.ended.float().mean().item(),
        }
    )
    if world is not None:
        out["world/gold_score"] = sum(world.judge(p, t).score for p, t in zip(batch, r.texts)) / len(batch)
    return out


def group_metrics(advantages: torch.Tensor, scores: torch.Tensor, cfg: PPOSettings) -> dict:
    """RLOO's or GRPO's statistics of the step's (B,) advantages and of its groups of K scores to one
    prompt."""
    scores = scores.view(-1, cfg.group_size)  # (B / K, K)
    name = cfg.algorithm
    return {
        f"{name}/advantage/std": advantages.std(correction=0).item(),
        f"{name}/advantage/abs_max": advantages.abs().max().item(),
        f"{name}/group/score_std": scores.std(1, correction=1).mean().item(),
        f"{name}/group/tied_frac": (scores == scores[:, :1]).all(1).float().mean().item(),
    }


def manifest(cfg: PPOConfig, summary: dict, beta: float) -> dict:
    data = {"prompts": str(cfg.prompts), "prompts_sha256": file_sha256(cfg.prompts)}
    if cfg.ptx:
        data.update(ptx=str(cfg.ptx), ptx_sha256=file_sha256(cfg.ptx))
    return {
        "stage": "ppo",
        "parent": str(cfg.policy),
        "reference": str(cfg.reference or cfg.policy),
        "reward_model": str(cfg.reward),
        "config": asdict(cfg),
        "final_kl_coef": beta,
        "data": data,
        "metrics": summary,
    }
