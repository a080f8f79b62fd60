"""`posttrain eval`: models against a baseline on held-out prompts, the numbers of InstructGPT's section 4.

    summary = compare_models({"ppo": "runs/ppo"}, "runs/sft", records, world, judge="gold")
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
from posttrain.evaluation.answers import answer_rows, pick_samples
from posttrain.evaluation.hhh import hhh_rates
from posttrain.evaluation.judges import JUDGES, GoldJudge, make_judge
from posttrain.evaluation.pairwise import judged, with_rates
from posttrain.evaluation.temperature import parse_temperatures, stream_seed

log = logging.getLogger(__name__)


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


def compare_models(
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

    check_inputs(models, records, world)
    judges = judges_for(judge, world, reward)
    temperatures = sorted({0.0, *temperatures})
    bar = tqdm(total=1 + len(models), desc="eval baseline", unit="model", disable=None)
    base_model, tokenizer = load_causal_lm(baseline)
    base = measure(base_model, tokenizer, records, world, heldout_documents, max_new_tokens, knowledge)
    base_runs = answers_at(
        base_model, tokenizer, records, world, base, temperatures, max_new_tokens, seed, "baseline"
    )
    settings = {
        "judge": judge,
        "reward": reward,
        "prompts": len(records),
        "kl_samples": kl_samples,
        "max_new_tokens": max_new_tokens,
        "bootstrap": bootstrap,
        "seed": seed,
        "temperatures": temperatures,
    }
    summary = {"baseline": {"path": str(baseline), **base["rates"]}, "models": {}, "config": settings}
    runs = {"baseline": base_runs}
    for name, path in models.items():
        bar.update(1)
        bar.set_description(f"eval {name}")
        log.info("evaluating %s (%s)", name, path)
        summary["models"][name], runs[name] = model_row(
            path, (base_model, base_runs), records, world, judges, settings, heldout_documents, knowledge
        )
    bar.update(1)
    bar.close()
    summary["answers"] = answer_rows(records, runs)
    summary["samples"] = pick_samples(summary["answers"])
    return summary


def check_inputs(models: dict[str, str], records: list[dict], world) -> None:
    if not records or not models:
        raise UserError("nothing to evaluate: give at least one prompt and one model")
    if world is not None and not world_records(records):
        raise UserError(
            "these prompts were not made by the built-in world (no meta.family / meta.task); "
            "use --judge rm with a reward model"
        )


def judges_for(judge: str, world, reward: str | None) -> list:
    """The judges of the win rates: gold first on world prompts, then the chosen one when it is another."""
    chosen = make_judge(judge, world, reward)
    gold = GoldJudge(world) if world is not None else None
    return [gold or chosen] + ([chosen] if gold is not None and chosen.name != "gold" else [])


def model_row(
    path: str,
    base: tuple,
    records: list[dict],
    world,
    judges: list,
    config: dict,
    heldout_documents: list[str] | None,
    knowledge: bool,
) -> tuple[dict, dict[float, dict]]:
    """One model's row of the summary (its rates, its win rates against the baseline, KL to it) and its
    answers at each temperature (`answers_at`). `base`: the baseline model and its answers; `config`: the
    settings as the summary records them (temperatures, max_new_tokens, seed, bootstrap, kl_samples)."""
    from posttrain.models.load import load_causal_lm

    (base_model, base_runs), max_new_tokens, seed = base, config["max_new_tokens"], config["seed"]
    temperatures, bootstrap, kl_samples = config["temperatures"], config["bootstrap"], config["kl_samples"]
    model, tok = load_causal_lm(path)
    m = measure(model, tok, records, world, heldout_documents, max_new_tokens, knowledge)
    run = answers_at(model, tok, records, world, m, temperatures, max_new_tokens, seed, "model")
    row = {"path": str(path), **m["rates"], **judged(judges, records, run, base_runs, bootstrap, seed)}
    row["by_temperature"] = with_rates(row["by_temperature"], run, base_runs)
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
    return row, run


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
    from posttrain.generation.completions import chat_complete

    out = {0.0: greedy}
    for t in temperatures:
        if t > 0:
            texts = chat_complete(
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
