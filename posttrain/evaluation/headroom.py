"""`posttrain world headroom`: before spending PPO compute, is there anything better than the
policy's greedy answer among its own samples?

    posttrain world headroom --model runs/sft --prompts runs/world/test.jsonl --k 16 [--reward runs/rm]
        --out DIR

For each world prompt: the greedy answer (temperature 0) and K samples at --temperature, from
posttrain's own sampler (the loop PPO rollouts run), all judged by the gold scorer. Per family and
overall:

- `greedy`, `sampled`: mean gold score of the greedy answer and of a sample.
- `oracle@n`: win rate against greedy of the gold-best of n samples (win 1, tie 0.5, loss 0), the
  exact expectation over uniform n-subsets of the K samples: sorted by gold, the i-th smallest is
  the best of an n-subset with probability C(i-1, n-1) / C(K, n) (`scaling.py`; Nakano et al.
  2021). 0.5 at every n means sampling never beats greedy: nothing for RL to find by sampling.
- `any>greedy`: share of prompts where at least one of the K samples scores above greedy.
- with --reward: `rm@n`, the same win rate when the reward model picks the sample (its gold score
  counts; samples the reward model scores equally are averaged over, as a uniform pick among them
  would be), and `captured` = (rm@K - 0.5) / (oracle@K - 0.5), the share of the room the oracle
  finds that the reward model finds too (none when the oracle finds no room).

Writes DIR/headroom.json (every number, per family) and DIR/samples.jsonl (per prompt: the greedy
answer and every sample, with gold and reward scores).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from posttrain.config import Options, Overwrite, SamplingOptions, WorldRef, option
from posttrain.errors import UserError
from posttrain.evaluation.scaling import best_of_n_expectations
from posttrain.evaluation.winrate import pairwise_outcome

ROWS_PER_BATCH = 64  # sequences per `sample` call: prompts x K for samples, prompts for greedy


@dataclass(kw_only=True)
class HeadroomConfig(Options, Overwrite, SamplingOptions, WorldRef):
    model: str = option(
        help="policy whose greedy answer and samples are compared (the SFT model)", required=True
    )
    prompts: Path = option(
        help="world prompt JSONL (e.g. test.jsonl); the gold scorer needs the world's prompts", required=True
    )
    out: Path = option(help="directory to write (headroom.json, samples.jsonl)", required=True)
    k: int = option(
        16, help="samples per prompt; best-of-n is reported for n = 1, 4, 16 up to K, and K", ge=1
    )
    reward: str | None = option(None, help="reward model directory (posttrain rm): also report the RM's pick")
    seed: int = option(0, help="sampling seed", ge=0)


# --- math: per prompt, pure ------------------------------------------------------------
def best_of_ns(k: int) -> list[int]:
    """The n reported for K samples: 1, 4 and 16 where they are <= K, and K itself."""
    return sorted({n for n in (1, 4, 16) if n <= k} | {k})


def outcomes_against(scores, greedy: float) -> np.ndarray:
    """(K,) 1 / 0.5 / 0 for each sample's gold score above / equal to / below the greedy answer's."""
    return np.array([pairwise_outcome(s, greedy) for s in np.asarray(scores, dtype=float)])


def average_over_ties(keys, values) -> np.ndarray:
    """`values` with each replaced by the mean over the items whose key equals its key.

    Best-of-n by a picker with ties: when the top key of a subset is shared, a uniform pick among
    the tied items is worth their mean; by symmetry the mean over a random tied subset is the mean
    over the whole tie group, so the order-statistics estimator applies to the averaged values."""
    keys, values = np.asarray(keys, dtype=float), np.asarray(values, dtype=float)
    same = keys[:, None] == keys[None, :]  # (K, K)
    return (same * values[None, :]).sum(axis=1) / same.sum(axis=1)


def oracle_win_rates(gold, greedy: float, ns: list[int]) -> np.ndarray:
    """(len(ns),) expected outcome against greedy of the gold-best of a uniform n-subset of the samples."""
    _, expected = best_of_n_expectations(gold, outcomes_against(gold, greedy), ns)
    return expected


def picked_win_rates(picker, gold, greedy: float, ns: list[int]) -> np.ndarray:
    """(len(ns),) expected outcome against greedy of the sample `picker` scores highest in a uniform
    n-subset, judged by its gold score; ties in `picker` are averaged over."""
    outcomes = average_over_ties(picker, outcomes_against(gold, greedy))
    _, expected = best_of_n_expectations(picker, outcomes, ns)
    return expected


def captured(rm_win: float, oracle_win: float) -> float | None:
    """Share of the oracle's room over greedy that the reward model's pick reaches; None without room."""
    room = oracle_win - 0.5
    return None if room <= 1e-12 else (rm_win - 0.5) / room


def summarise(rows: list[dict], ns: list[int]) -> dict:
    """Means over `rows` (per-prompt numbers from `prompt_numbers`) of every column."""
    out = {
        "prompts": len(rows),
        "greedy_gold": float(np.mean([r["greedy_gold"] for r in rows])),
        "sampled_gold": float(np.mean([r["sampled_gold"] for r in rows])),
        "oracle_win_rate": {
            str(n): float(v) for n, v in zip(ns, np.mean([r["oracle"] for r in rows], axis=0))
        },
        "any_better": float(np.mean([r["any_better"] for r in rows])),
    }
    if "rm" in rows[0]:
        out["rm_win_rate"] = {str(n): float(v) for n, v in zip(ns, np.mean([r["rm"] for r in rows], axis=0))}
        out["rm_captured"] = captured(out["rm_win_rate"][str(ns[-1])], out["oracle_win_rate"][str(ns[-1])])
    return out


def prompt_numbers(greedy: float, gold: list[float], rm: list[float] | None, ns: list[int]) -> dict:
    row = {
        "greedy_gold": greedy,
        "sampled_gold": float(np.mean(gold)),
        "oracle": oracle_win_rates(gold, greedy, ns),
        "any_better": float(max(gold) > greedy),
    }
    if rm is not None:
        row["rm"] = picked_win_rates(rm, gold, greedy, ns)
    return row


# --- the run ---------------------------------------------------------------------------
def headroom(cfg: HeadroomConfig) -> tuple[dict, list[dict]]:
    """(headroom.json's content, samples.jsonl's rows)."""
    from posttrain.data.records import read_conversations
    from posttrain.evaluation.compare import world_records
    from posttrain.models.load import load_causal_lm
    from posttrain.world import World
    from posttrain.world.export import check_out

    cfg.check()
    check_out(cfg.out, cfg.force)
    records = read_conversations(cfg.prompts, ends_with="user")
    if not records:
        raise UserError(f"{cfg.prompts}: no prompts")
    if not world_records(records):
        raise UserError(
            f"{cfg.prompts}: these prompts were not made by the built-in world (no meta.family / "
            "meta.task), so the gold scorer cannot judge the answers; use the world's test.jsonl"
        )
    world = World(seed=cfg.world_seed, scale=cfg.scale)
    world.check_tasks(records)
    model, tokenizer = load_causal_lm(cfg.model)
    model.eval()
    greedy, samples = generate(model, tokenizer, [r["messages"] for r in records], cfg)
    del model
    rm_scores = reward_scores(cfg.reward, records, samples) if cfg.reward else [None] * len(records)
    ns = best_of_ns(cfg.k)
    rows, numbers = [], []
    for record, g_text, s_texts, rm in zip(records, greedy, samples, rm_scores):
        g_gold = world.judge(record, g_text).score
        gold = [world.judge(record, t).score for t in s_texts]
        numbers.append((record["meta"]["family"], prompt_numbers(g_gold, gold, rm, ns)))
        rows.append(sample_row(record, g_text, g_gold, s_texts, gold, rm))
    return result_json(cfg, ns, numbers), rows


def generate(
    model, tokenizer, conversations: list[list[dict]], cfg: HeadroomConfig
) -> tuple[list[str], list[list[str]]]:
    """The greedy answer and K samples of each conversation, in batches of about ROWS_PER_BATCH sequences."""
    from posttrain.generation.sampler import sample_texts

    k = cfg.k
    generator = torch.Generator().manual_seed(cfg.seed)
    with tqdm(
        total=2 * len(conversations), desc="headroom: greedy, then samples", unit="prompt", disable=None
    ) as bar:
        greedy = sample_texts(
            model,
            tokenizer,
            conversations,
            temperature=0.0,
            max_new_tokens=cfg.max_new_tokens,
            generator=generator,
            batch_size=ROWS_PER_BATCH,
            on_batch=bar.update,
        )
        flat = sample_texts(
            model,
            tokenizer,
            [c for c in conversations for _ in range(k)],  # each prompt K times
            temperature=cfg.temperature,
            max_new_tokens=cfg.max_new_tokens,
            generator=generator,
            batch_size=max(1, ROWS_PER_BATCH // k) * k,
            on_batch=lambda rows: bar.update(rows // k),
        )
    return greedy, [flat[j * k : (j + 1) * k] for j in range(len(conversations))]


def reward_scores(path: str, records: list[dict], samples: list[list[str]]) -> list[list[float]]:
    """Normalised reward-model score of every sample, per prompt."""
    from posttrain.models.reward import RewardScorer

    scorer = RewardScorer(path)
    out = []
    for record, texts in tqdm(
        list(zip(records, samples)), desc="headroom: reward model", unit="prompt", disable=None
    ):
        out.append(scorer.score([(record["messages"], t) for t in texts]))
    return out


def sample_row(
    record: dict, greedy: str, greedy_gold: float, texts: list[str], gold: list[float], rm: list[float] | None
) -> dict:
    samples = [{"text": t, "gold": g} for t, g in zip(texts, gold)]
    if rm is not None:
        for s, r in zip(samples, rm):
            s["rm"] = r
    return {
        "id": record["id"],
        "family": record["meta"]["family"],
        "greedy": {"text": greedy, "gold": greedy_gold},
        "samples": samples,
    }


def result_json(cfg: HeadroomConfig, ns: list[int], numbers: list[tuple[str, dict]]) -> dict:
    from posttrain.world.families import FAMILY_NAMES

    order = {f: i for i, f in enumerate(FAMILY_NAMES)}
    families = sorted({f for f, _ in numbers}, key=lambda f: (order.get(f, len(order)), f))
    return {
        "config": {
            "model": cfg.model,
            "prompts": str(cfg.prompts),
            "k": cfg.k,
            "temperature": cfg.temperature,
            "reward": cfg.reward,
            "max_new_tokens": cfg.max_new_tokens,
            "seed": cfg.seed,
        },
        "n": ns,
        "by_family": {f: summarise([r for g, r in numbers if g == f], ns) for f in families},
        "all": summarise([r for _, r in numbers], ns),
    }


def write_headroom(result: dict, rows: list[dict], out: Path) -> None:
    from posttrain.data.records import atomic_path, write_jsonl

    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "samples.jsonl", rows)
    with atomic_path(out / "headroom.json") as tmp:
        tmp.write_text(json.dumps(result, indent=1) + "\n")


def table(result: dict) -> str:
    """The per-family table the command prints (rows: families, then "all")."""
    ns = result["n"]
    has_rm = "rm_win_rate" in result["all"]
    head = ["family", "prompts", "greedy", "sampled", *(f"oracle@{n}" for n in ns), "any>greedy"]
    if has_rm:
        head += [*(f"rm@{n}" for n in ns), "captured"]
    c = result["config"]
    lines = [
        f"greedy answer against {c['k']} samples at temperature {c['temperature']:g}, judged by the gold "
        "scorer (win rates against greedy; 50% = no better)",
        f"{head[0]:<15}" + "".join(f"{h:>{max(9, len(h) + 1)}}" for h in head[1:]),
    ]
    for name, r in [*result["by_family"].items(), ("all", result["all"])]:
        cells = [
            str(r["prompts"]),
            f"{r['greedy_gold']:.3f}",
            f"{r['sampled_gold']:.3f}",
            *(f"{r['oracle_win_rate'][str(n)]:.1%}" for n in ns),
            f"{r['any_better']:.1%}",
        ]
        if has_rm:
            share = r["rm_captured"]
            cells += [
                *(f"{r['rm_win_rate'][str(n)]:.1%}" for n in ns),
                "-" if share is None else f"{share:.0%}",
            ]
        lines.append(f"{name:<15}" + "".join(f"{c:>{max(9, len(h) + 1)}}" for c, h in zip(cells, head[1:])))
    return "\n".join(lines)
