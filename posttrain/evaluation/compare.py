"""`posttrain eval`: models against a baseline on held-out prompts, the numbers of InstructGPT's section 4.

    summary = evaluate({"ppo": "runs/ppo"}, "runs/sft", records, world, judge="gold")
    write_report(summary, "runs/report")          # posttrain.evaluation.report

For the baseline and each model: greedy answers (batched), gold judgements and the helpful /
honest / harmless rates (`hhh.py`), the alignment tax (held-out pretraining loss, knowledge
completion). For each model also: win rate against the baseline with a 95% bootstrap interval
and a length-controlled win rate (`winrate.py`), by the gold judge and by the chosen one, and
KL(model || baseline) on the prompts (`likelihood.py`). The headline is greedy; `by_temperature`
repeats the win rate on one sample per prompt at each temperature T > 0 (`temperature.py`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from posttrain.config import Generation, Options, Overwrite, WorldRef, option
from posttrain.errors import UserError
from posttrain.evaluation.hhh import hhh_rates
from posttrain.evaluation.judges import JUDGES, GoldJudge, make_judge
from posttrain.evaluation.temperature import (
    parse_temperatures,
    sampled_answers,
    stream_seed,
    temperature_entry,
)
from posttrain.evaluation.winrate import bootstrap_interval, length_controlled_win_rate, win_rate

log = logging.getLogger(__name__)
SAMPLES_PER_FAMILY = 2


@dataclass(kw_only=True)
class EvalConfig(Options, Generation, WorldRef, Overwrite):
    model: list[str] = option(help="a model to evaluate, as PATH or NAME=PATH", required=True, repeat=True)
    baseline: str = option(help="baseline model directory (usually the SFT model)", required=True)
    prompts: Path = option(
        help="prompt JSONL (conversations ending with a user turn), e.g. the world's test.jsonl",
        required=True,
    )
    out: Path = option(
        help="report directory to write (index.html, summary.json, answers.jsonl)", required=True
    )
    judge: str = option(
        "gold",
        help="pairwise judge: gold (the world's gold scorer), sim (a simulated labeler "
        "per prompt) or rm (a reward model, --reward)",
        choices=JUDGES,
    )
    reward: str | None = option(None, help="reward model directory for --judge rm")
    heldout_corpus: Path | None = option(
        None,
        help="held-out pretraining documents for the alignment tax "
        "(the world's corpus_heldout.jsonl); default: beside --prompts",
    )
    kl_samples: int = option(
        1,
        help="responses sampled per prompt (temperature 1) to estimate KL to the baseline; 0 skips it",
        ge=0,
    )
    bootstrap: int = option(2000, help="bootstrap resamples of the prompts for the win-rate interval", ge=10)
    seed: int = option(0, help="seed of the bootstrap, the KL samples and the sampled answers", ge=0)
    temperatures: str = option(
        "0,1",
        help="comma list of sampling temperatures for the win rate: 0 is greedy "
        "(the headline, always measured), each T > 0 one sample per prompt "
        "from the model and from the baseline",
    )

    def check(self) -> None:
        super().check()
        self.temperature_values()
        if self.judge == "rm" and not self.reward:
            raise UserError("--judge rm needs --reward RM_DIR (a reward model trained with posttrain rm)")

    def temperature_values(self) -> tuple[float, ...]:
        return parse_temperatures(self.temperatures)


def model_names(specs: list[str]) -> dict[str, str]:
    """{name: path} from `--model` values `PATH` or `NAME=PATH` (name: the directory's name)."""
    if not specs:
        raise UserError("give at least one --model [NAME=]PATH to compare against --baseline")
    out: dict[str, str] = {}
    for spec in specs:
        name, _, path = spec.partition("=") if "=" in spec else (Path(spec.rstrip("/")).name, "", spec)
        if not name or not path:
            raise UserError(f"--model {spec!r}: use PATH or NAME=PATH")
        if name in out:
            raise UserError(f"--model: two models are called {name!r}; name them with NAME=PATH")
        out[name] = path
    return out


def world_records(records: list[dict]) -> bool:
    """True when every record carries a world task (the gold scorer can judge it)."""
    return all(
        isinstance(r.get("meta"), dict) and "task" in r["meta"] and "family" in r["meta"] for r in records
    )


def evaluate(
    models: dict[str, str],
    baseline: str,
    records: list[dict],
    world=None,
    *,
    judge: str = "gold",
    reward: str | None = None,
    heldout_documents: list[str] | None = None,
    kl_samples: int = 1,
    max_new_tokens: int = 48,
    bootstrap: int = 2000,
    seed: int = 0,
    temperatures: tuple[float, ...] = (0.0, 1.0),
    knowledge: bool = True,
) -> dict:
    """Compare each of `models` ({name: path}) with `baseline`; returns the summary `write_report` renders.

    `world` (a posttrain.world.World) enables the gold judge, the HHH rates and knowledge completion;
    without it `judge` must be "rm" and those fields are absent. Win rates are measured at each of
    `temperatures` (0, greedy, always; its numbers are also the headline). `knowledge=False` skips knowledge
    completion, which does not read the prompts (a second prompt set would measure the same number).
    """
    from posttrain.models.load import load_causal_lm

    if not records or not models:
        raise UserError("nothing to evaluate: give at least one prompt and one model")
    if world is not None and not world_records(records):
        raise UserError(
            "these prompts were not made by the built-in world (no meta.family / meta.task); "
            "use --judge rm with a reward model"
        )
    chosen = make_judge(judge, world, reward)
    gold = GoldJudge(world) if world is not None else None
    judges = [gold or chosen] + ([chosen] if gold is not None and chosen.name != "gold" else [])
    temperatures = sorted({0.0, *temperatures})
    bar = tqdm(total=1 + len(models), desc="eval baseline", unit="model", disable=None)
    base_model, tokenizer = load_causal_lm(baseline)
    base = measure(base_model, tokenizer, records, world, heldout_documents, max_new_tokens, knowledge)
    base_runs = answers_at(
        base_model, tokenizer, records, world, base, temperatures, max_new_tokens, seed, "baseline"
    )
    summary = {
        "baseline": {"path": str(baseline), **base["rates"]},
        "models": {},
        "config": {
            "judge": judge,
            "reward": reward,
            "prompts": len(records),
            "kl_samples": kl_samples,
            "max_new_tokens": max_new_tokens,
            "bootstrap": bootstrap,
            "seed": seed,
            "temperatures": temperatures,
        },
    }
    runs = {"baseline": base_runs}
    for name, path in models.items():
        bar.update(1)
        bar.set_description(f"eval {name}")
        log.info("evaluating %s (%s)", name, path)
        model, tok = load_causal_lm(path)
        m = measure(model, tok, records, world, heldout_documents, max_new_tokens, knowledge)
        runs[name] = answers_at(model, tok, records, world, m, temperatures, max_new_tokens, seed, "model")
        row = {
            "path": str(path),
            **m["rates"],
            **judged(judges, records, runs[name], base_runs, bootstrap, seed),
        }
        row["by_temperature"] = with_rates(row["by_temperature"], runs[name], base_runs)
        if kl_samples:
            from posttrain.evaluation.likelihood import kl_to_reference

            row["kl_to_sft"] = kl_to_reference(
                model,
                base_model,
                tok,
                [r["messages"] for r in records],
                samples=kl_samples,
                max_new_tokens=max_new_tokens,
                seed=seed,
            )
        summary["models"][name] = row
        del model
    bar.update(1)
    bar.close()
    summary["answers"] = answer_rows(records, runs)
    summary["samples"] = pick_samples(summary["answers"])
    return summary


def measure(
    model, tokenizer, records, world, heldout_documents, max_new_tokens, knowledge: bool = True
) -> dict:
    """One model's greedy answers, their gold scores and HHH rates, and its alignment-tax numbers."""
    from posttrain.generation.completions import chat_complete

    answers = chat_complete(model, tokenizer, [r["messages"] for r in records], max_new_tokens=max_new_tokens)
    scores, rates = judge_answers(records, answers, world)
    if world is not None and knowledge:
        from posttrain.evaluation.probes import knowledge_completion

        rates["knowledge_accuracy"] = knowledge_completion(model, tokenizer, world.kb)["accuracy"]
    if heldout_documents:
        from posttrain.evaluation.likelihood import heldout_lm_loss

        rates["heldout_loss"] = heldout_lm_loss(model, tokenizer, heldout_documents)
    return {"answers": answers, "scores": scores, "rates": rates}


def judge_answers(records, answers: list[str], world) -> tuple[list, dict]:
    """(per-prompt gold scores, rates): the HHH rates of `hhh.py` with their n on world prompts; off the
    world, scores of None and the mean length only."""
    rates: dict = {"mean_words": sum(len(a.split()) for a in answers) / len(answers)}
    if world is None:
        return [None] * len(records), rates
    judgements = [world.judge(r, a) for r, a in zip(records, answers)]
    rates.update(hhh_rates(judgements, answers))
    return [j.score for j in judgements], rates


def answers_at(
    model, tokenizer, records, world, greedy: dict, temperatures, max_new_tokens: int, seed: int, role: str
) -> dict[float, dict]:
    """{temperature: {"answers", "scores", "rates"}}: the greedy `measure` result at 0, one sample per prompt
    above (its rates from the same judgements as its scores)."""
    out = {0.0: greedy}
    for t in temperatures:
        if t > 0:
            texts = sampled_answers(
                model,
                tokenizer,
                [r["messages"] for r in records],
                temperature=t,
                max_new_tokens=max_new_tokens,
                seed=stream_seed(seed, role, t),
            )
            scores, rates = judge_answers(records, texts, world)
            out[t] = {"answers": texts, "scores": scores, "rates": rates}
    return out


GREEDY_ONLY = ("by_family", "knowledge_accuracy", "heldout_loss")  # not repeated in `by_temperature` entries


def with_rates(
    entries: list[dict], model_runs: dict[float, dict], base_runs: dict[float, dict]
) -> list[dict]:
    """`by_temperature` entries with the model's and the baseline's rates at that temperature (`rates`,
    `baseline_rates`: helpful, honest, harmless, task failures, refusals, words..., each with its n)."""
    pick = lambda rates: {k: v for k, v in rates.items() if k not in GREEDY_ONLY}  # noqa: E731
    return [
        {
            **e,
            "rates": pick(model_runs[e["temperature"]]["rates"]),
            "baseline_rates": pick(base_runs[e["temperature"]]["rates"]),
        }
        for e in entries
    ]


def judged(
    judges, records, model_runs: dict[float, dict], base_runs: dict[float, dict], bootstrap: int, seed: int
) -> dict:
    """The headline win rates (greedy) by the first judge, the second one's under `judge`, and
    `by_temperature`: both judges' win rates and the gold scores at every temperature."""
    outcomes = {
        t: [j.outcomes(list(zip(records, run["answers"], base_runs[t]["answers"]))) for j in judges]
        for t, run in model_runs.items()
    }  # per temperature, per judge
    lengths = [
        len(a.split()) - len(b.split()) for a, b in zip(model_runs[0.0]["answers"], base_runs[0.0]["answers"])
    ]
    out = win_rates(judges[0].name, outcomes[0.0][0], records, lengths, bootstrap, seed)
    if len(judges) > 1:
        out["judge"] = {
            "name": judges[1].name,
            **win_rates(judges[1].name, outcomes[0.0][1], records, lengths, bootstrap, seed),
        }
    out["by_temperature"] = [
        temperature_entry(
            t,
            [(j.name, o) for j, o in zip(judges, outcomes[t])],
            model_runs[t]["scores"],
            base_runs[t]["scores"],
            bootstrap=bootstrap,
            seed=seed,
        )
        for t in model_runs
    ]
    return out


def win_rates(judge_name: str, outcomes: list[float], records, lengths, bootstrap: int, seed: int) -> dict:
    """Win rate, interval, LC rate and tie rate of a judge's per-prompt outcomes (greedy answers);
    also the win rate per family when the records are the world's."""
    low, high = bootstrap_interval(outcomes, resamples=bootstrap, seed=seed)
    by_family: dict[str, list[float]] = {}
    for record, o in zip(records, outcomes):
        by_family.setdefault((record.get("meta") or {}).get("family"), []).append(o)
    out = {
        "win_rate": win_rate(outcomes),
        "win_rate_ci_low": low,
        "win_rate_ci_high": high,
        "lc_win_rate": length_controlled_win_rate(outcomes, lengths),
        "tie_rate": sum(o == 0.5 for o in outcomes) / len(outcomes),
        "win_rate_judge": judge_name,
    }
    if None not in by_family:
        out["win_rate_by_family"] = {f: win_rate(os) for f, os in by_family.items()}
    return out


def answer_rows(records, runs: dict[str, dict[float, dict]]) -> list[dict]:
    """One row per prompt: its family, messages and every system's greedy answer and gold score;
    under `sampled`, keyed by temperature ("1" for T = 1), the sampled ones."""
    rows = []
    temperatures = [t for t in next(iter(runs.values())) if t > 0]
    for i, r in enumerate(records):
        at = lambda t: {
            name: {"text": run[t]["answers"][i], "gold_score": run[t]["scores"][i]}  # noqa: E731
            for name, run in runs.items()
        }
        row = {
            "id": r["id"],
            "family": (r.get("meta") or {}).get("family"),
            "messages": r["messages"],
            "answers": at(0.0),
        }
        if temperatures:
            row["sampled"] = {f"{t:g}": at(t) for t in temperatures}
        rows.append(row)
    return rows


def pick_samples(rows: list[dict], per_family: int = SAMPLES_PER_FAMILY) -> list[dict]:
    """The first few prompts of each family (in file order), families in the world's order."""
    from posttrain.world.families import FAMILY_NAMES

    seen: dict = {}
    out = []
    for row in rows:
        if seen.get(row["family"], 0) < per_family:
            seen[row["family"]] = seen.get(row["family"], 0) + 1
            out.append(row)
    order = {f: i for i, f in enumerate(FAMILY_NAMES)}
    return sorted(out, key=lambda r: order.get(r["family"], len(order)))
