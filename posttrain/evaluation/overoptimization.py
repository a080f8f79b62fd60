"""`posttrain eval overoptimization`: gold and proxy reward against sqrt(KL), for best-of-n and PPO.

Gao, Schulman & Hilton 2022: optimising a proxy reward model first raises the true (gold) reward,
then lowers it, while the proxy keeps rising. Here the proxy is a `posttrain rm` reward model
(normalised: SFT samples score mean 0, std 1) and the gold reward is the world's gold scorer.

- best-of-n: 64 samples per prompt from the policy, drawn once; for n = 1..64 the expected
  proxy and gold score of the proxy-best of n (unbiased order-statistics estimator, `scaling.py`),
  at KL_bon = log n - (n-1)/n.
- PPO: each run directory's `metrics.jsonl` (`objective/kl`, `objective/score`,
  `world/gold_score` per step) and `posttrain.json` (`config.kl_coef` is beta); an unfinished
  run's `OUT.partial/` has no posttrain.json yet, so its beta is the logged `objective/kl_coef`.
- fits: R(d) = d(alpha - beta d) to best-of-n and R(d) = d(alpha - beta log d) to each PPO run,
  d = sqrt(KL), R measured from the initial policy's score: best-of-n at n = 1 for best-of-n, the
  run's first step for PPO (its rollouts are on its own training prompts, so its levels can differ).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from posttrain.config import Generation, Options, Overwrite, WorldRef, option
from posttrain.errors import UserError
from posttrain.evaluation import scaling

log = logging.getLogger(__name__)
PPO_KEYS = ("objective/kl", "objective/score", "world/gold_score")


@dataclass(kw_only=True)
class OveroptConfig(Options, Generation, WorldRef, Overwrite):
    policy: str = option(help="policy to sample best-of-n from (the SFT model)", required=True)
    reward: str = option(help="proxy reward model directory (posttrain rm)", required=True)
    prompts: Path = option(
        help="world prompt JSONL (e.g. test.jsonl); gold scores need the world's prompts", required=True
    )
    out: Path = option(help="directory to write (index.html, overoptimization.json)", required=True)
    ppo_run: list[Path] = option([], nargs="+", help="PPO run directories (OUT or OUT.partial) to read")
    n_max: int = option(64, help="samples per prompt; best-of-n for n = 1..N", ge=1)
    max_prompts: int = option(64, help="prompts to sample (the first ones of --prompts)", ge=1)
    seed: int = option(0, help="sampling seed", ge=0)


# --- best-of-n -------------------------------------------------------------------------
def best_of_n(proxy: np.ndarray, gold: np.ndarray) -> dict:
    """Curves from (prompts, N) proxy and gold scores: mean over prompts for n = 1..N."""
    ns = list(range(1, proxy.shape[1] + 1))
    per_prompt = [scaling.best_of_n_expectations(p, g, ns) for p, g in zip(proxy, gold)]
    proxy_n = np.mean([p for p, _ in per_prompt], axis=0)
    gold_n = np.mean([g for _, g in per_prompt], axis=0)
    kl = scaling.kl_best_of_n(ns)
    return {
        "n": ns,
        "kl": kl.tolist(),
        "sqrt_kl": np.sqrt(kl).tolist(),
        "proxy": proxy_n.tolist(),
        "gold": gold_n.tolist(),
    }


def sample_scores(cfg: OveroptConfig, records: list[dict], world) -> tuple[np.ndarray, np.ndarray]:
    """(prompts, N) proxy and gold scores of N samples per prompt from the policy, temperature 1."""
    from tqdm import tqdm

    from posttrain.generation.completions import sample_k
    from posttrain.models.load import load_causal_lm
    from posttrain.models.reward import RewardScorer

    model, tokenizer = load_causal_lm(cfg.policy)
    scorer = RewardScorer(cfg.reward)
    proxy, gold = [], []
    for i, record in enumerate(tqdm(records, desc="best-of-n samples", unit="prompt", disable=None)):
        texts = [
            t
            for t, _ in sample_k(
                model,
                tokenizer,
                [record["messages"]],
                k=cfg.n_max,
                temperature=1.0,
                top_p=1.0,
                max_new_tokens=cfg.max_new_tokens,
                seed=cfg.seed + i,
            )[0]
        ]
        proxy.append(scorer.score([(record["messages"], t) for t in texts]))
        gold.append([world.judge(record, t).score for t in texts])
    return np.array(proxy), np.array(gold)


# --- PPO runs --------------------------------------------------------------------------
def read_ppo_run(path: str | Path) -> dict:
    """{"path", "beta", "steps", "kl", "proxy", "gold"} from a PPO run directory (OUT or OUT.partial)."""
    path = Path(path)
    if not path.is_dir():
        partial = path.with_name(path.name + ".partial")
        if not partial.is_dir():
            raise UserError(
                f"{path}: no such PPO run directory (nor {partial.name}); pass a `posttrain ppo` --out"
            )
        path = partial
    rows = read_ppo_metrics(path / "metrics.jsonl")
    return {
        "path": str(path),
        "beta": ppo_beta(path, rows),
        "steps": [r["step"] for r in rows],
        "kl": [r["objective/kl"] for r in rows],
        "proxy": [r["objective/score"] for r in rows],
        "gold": [r["world/gold_score"] for r in rows],
    }


def ppo_beta(path: Path, rows: list[dict]) -> float:
    """The run's KL coefficient: posttrain.json's config.kl_coef (a finished run), else the first
    logged `objective/kl_coef` (an unfinished run has no posttrain.json yet)."""
    manifest = path / "posttrain.json"
    if manifest.is_file():
        try:
            return float(json.loads(manifest.read_text())["config"]["kl_coef"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise UserError(
                f"{manifest}: expected JSON with config.kl_coef (the KL coefficient beta)"
            ) from None
    if isinstance(rows[0].get("objective/kl_coef"), (int, float)):
        return float(rows[0]["objective/kl_coef"])
    raise UserError(
        f"{path}: no posttrain.json with config.kl_coef and no objective/kl_coef in metrics.jsonl; "
        "cannot tell the run's beta"
    )


def read_ppo_metrics(path: Path) -> list[dict]:
    """The metrics lines that carry all of PPO_KEYS, in step order; the file must have at least one."""
    from posttrain.data.records import read_jsonl

    rows = [
        r for _, r in read_jsonl(path) if all(isinstance(r.get(k), (int, float)) for k in ("step", *PPO_KEYS))
    ]
    if not rows:
        raise UserError(
            f"{path}: no line has all of step, {', '.join(PPO_KEYS)}; is it a posttrain ppo run "
            "with the world's gold scorer logging world/gold_score?"
        )
    return sorted(rows, key=lambda r: r["step"])


# --- fits and the whole study ------------------------------------------------------------
def fit_curves(bon: dict | None, runs: list[dict]) -> dict:
    """Gao et al.'s fits, each on scores minus the initial policy's: best-of-n at n = 1, and for a PPO run
    its first logged step (KL about 0), since PPO scores are measured on its own training prompts."""
    fits: dict = {}
    if bon:
        d = np.array(bon["sqrt_kl"])
        for which in ("proxy", "gold"):
            r = np.array(bon[which]) - bon[which][0]
            alpha, beta = scaling.fit_best_of_n(d, r)
            fits[f"bon/{which}"] = {"alpha": alpha, "beta": beta, "origin": bon[which][0]}
    for run in runs:
        d = np.sqrt(np.clip(run["kl"], 0, None))
        for which in ("proxy", "gold"):
            origin = run[which][0]
            alpha, beta = scaling.fit_rl(d, np.array(run[which]) - origin)
            fits[f"ppo beta={run['beta']:g}/{which}"] = {"alpha": alpha, "beta": beta, "origin": origin}
    return fits


def study(cfg: OveroptConfig, records: list[dict] | None = None, world=None) -> dict:
    """Best-of-n (when records and world are given) and PPO runs, with fits; the JSON the report renders."""
    runs = [read_ppo_run(p) for p in cfg.ppo_run]
    bon = None
    if records:
        if cfg.n_max < 1 or cfg.n_max > 1024:
            raise UserError(f"--n-max must be in 1..1024, got {cfg.n_max}")
        proxy, gold = sample_scores(cfg, records[: cfg.max_prompts], world)
        bon = best_of_n(proxy, gold)
    if bon is None and not runs:
        raise UserError("nothing to plot: give prompts for best-of-n and/or --ppo-run directories")
    return {
        "best_of_n": bon,
        "ppo": runs,
        "fits": fit_curves(bon, runs),
        "config": {
            "policy": cfg.policy,
            "reward": cfg.reward,
            "prompts": str(cfg.prompts),
            "n_max": cfg.n_max,
            "max_prompts": cfg.max_prompts,
        },
    }


def write_overoptimization(result: dict, out_dir: str | Path) -> Path:
    """index.html (gold and proxy against sqrt(KL), with fits) and overoptimization.json."""
    from posttrain.evaluation import pages, plots

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pages.write_json(out_dir, "overoptimization.json", result)
    panels = [
        {"title": f"{which} reward", "ylabel": f"{which} score", "lines": lines_for(result, which)}
        for which in ("gold", "proxy")
    ]
    figure = plots.curves_figure(panels, xlabel="sqrt(KL) to the policy (nats^0.5)")
    fit_rows = [
        [pages.esc(k), f"{v['alpha']:.4f}", f"{v['beta']:.4f}", f"{v['origin']:.4f}"]
        for k, v in result["fits"].items()
    ]
    body = [
        '<p class="note">Gold (world scorer) and proxy (reward model, normalised) scores against the square '
        "root of the KL to the initial policy. Best-of-n: KL = log n - (n-1)/n; PPO: the runs' objective/kl. "
        "Dashed: least-squares fits of Gao et al. 2022, R(d) = d(alpha - beta d) for best-of-n and "
        "R(d) = d(alpha - beta log d) for RL, on scores minus the initial policy's. Best-of-n is measured on "
        "--prompts, PPO on its rollouts' training prompts: compare the shapes of the curves, not their "
        "levels.</p>",
        pages.image(figure, "gold and proxy against sqrt KL"),
        "<h2>Fits</h2>",
        pages.table(["curve", "alpha", "beta", "R(0)"], fit_rows),
    ]
    bon = result["best_of_n"]
    if bon:
        rows = [
            [str(n), f"{bon['kl'][n - 1]:.3f}", f"{bon['proxy'][n - 1]:.3f}", f"{bon['gold'][n - 1]:.3f}"]
            for n in bon["n"]
            if n & (n - 1) == 0
        ]  # powers of two
        body += ["<h2>Best-of-n</h2>", pages.table(["n", "KL (nats)", "proxy", "gold"], rows)]
    if result["ppo"]:
        rows = [
            [
                pages.esc(r["path"]),
                f"{r['beta']:g}",
                str(len(r["steps"])),
                f"{r['kl'][-1]:.3f}",
                f"{r['proxy'][-1]:.3f}",
                f"{r['gold'][-1]:.3f}",
            ]
            for r in result["ppo"]
        ]
        body += [
            "<h2>PPO runs (last step)</h2>",
            pages.table(["run", "beta", "points", "KL (nats)", "proxy", "gold"], rows),
        ]
    return pages.write_page(out_dir, "index.html", pages.page("Reward model over-optimisation", body))


def lines_for(result: dict, which: str) -> list[dict]:
    lines, fits = [], result["fits"]
    bon = result["best_of_n"]
    if bon:
        lines.append(
            {"x": bon["sqrt_kl"], "y": bon[which], "label": "best-of-n", "style": "-o", "color": "#4c72b0"}
        )
        f = fits[f"bon/{which}"]
        d = np.linspace(0, max(bon["sqrt_kl"]), 50)
        lines.append(
            {
                "x": d,
                "y": f["origin"] + scaling.best_of_n_curve(d, f["alpha"], f["beta"]),
                "label": "best-of-n fit",
                "style": "--",
                "color": "#4c72b0",
            }
        )
    for k, run in enumerate(result["ppo"]):
        color = ("#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860")[k % 5]
        x = [math.sqrt(max(v, 0.0)) for v in run["kl"]]
        lines.append(
            {
                "x": x,
                "y": run[which],
                "label": f"PPO beta={run['beta']:g} (steps)",
                "style": ":o",
                "color": color,
            }
        )
        f = fits[f"ppo beta={run['beta']:g}/{which}"]
        d = np.linspace(0, max(x) if x else 1, 50)
        lines.append(
            {
                "x": d,
                "y": f["origin"] + scaling.rl_curve(d, f["alpha"], f["beta"]),
                "label": f"fit beta={run['beta']:g}",
                "style": "--",
                "color": color,
            }
        )
    return lines
