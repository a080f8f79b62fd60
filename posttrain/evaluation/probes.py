"""World probes for any checkpoint: does it know the facts, and how does it behave as an assistant?

- `knowledge_completion`: plain-text prompts cut from the corpus's own sentences ("The capital
  of Veloria is") completed greedily; correct when the continuation starts with the fact.
  Chance is one over the number of values a relation takes.
- `gold_by_family`: greedy answers to chat-formatted prompts, judged by the gold scorer.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from posttrain.config import Generation, Options, WorldPick, option
from posttrain.generation.completions import chat_complete, complete
from posttrain.world.corpus_phrases import FACTS, PERSON_FACTS
from posttrain.world.families import FAMILY_NAMES


@dataclass(kw_only=True)
class ProbeConfig(Options, Generation, WorldPick):
    model: Path = option(
        help="model directory (a posttrain checkpoint or a Hugging Face model)", required=True
    )
    prompts: Path | None = option(None, help="prompt JSONL made by the world (default: its test split)")
    out: Path | None = option(None, help="also write the results (and every answer) to this JSON file")


def knowledge_prompts(kb, countries=None, people=None) -> list[tuple[str, str, str]]:
    """(relation, prefix, answer) for every fact of the knowledge base's head (or of the given entities)."""
    out = []
    for c in kb.countries if countries is None else countries:
        for relation, templates in FACTS.items():
            prefix = templates[0].split("{v}")[0].format(e=c.name).rstrip()
            out.append((relation, prefix, getattr(c, relation)))
    for p in kb.people if people is None else people:
        prefix = PERSON_FACTS[0].split("{p}")[0].format(n=p.name).rstrip()  # "Mira Dovan was a"
        out.append(("profession", prefix, p.profession))
    return out


def knowledge_completion(model, tokenizer, kb) -> dict:
    """Accuracy per relation and overall on the head's facts, with the chance level of each; where the
    world has a long tail, `by_bucket` adds the accuracy on the facts stated in 1, 2, 4, 8 or 16
    documents (Kandpal et al. 2023's plot: knowledge against exposure)."""
    buckets = {"head": knowledge_prompts(kb)}
    for k in sorted({e.mentions for e in kb.tail_countries + kb.tail_people}):
        buckets[f"tail-{k}"] = knowledge_prompts(
            kb,
            [c for c in kb.tail_countries if c.mentions == k],
            [p for p in kb.tail_people if p.mentions == k],
        )
    probes = [(bucket, *probe) for bucket, rows in buckets.items() for probe in rows]
    completions = complete(model, tokenizer, [prefix for *_, prefix, _ in probes])
    hits: dict[str, list[bool]] = defaultdict(list)
    by_bucket: dict[str, list[bool]] = defaultdict(list)
    for (bucket, relation, _, answer), text in zip(probes, completions):
        hit = text.strip().lower().startswith(answer.lower())
        by_bucket[bucket].append(hit)
        if bucket == "head":
            hits[relation].append(hit)
    values = {r: len(set(kb.values(r))) for r in hits}
    per = {r: {"accuracy": sum(h) / len(h), "n": len(h), "chance": 1 / values[r]} for r, h in hits.items()}
    every = [x for h in hits.values() for x in h]
    chance = sum(p["chance"] * p["n"] for p in per.values()) / len(every)
    return {
        "accuracy": sum(every) / len(every),
        "chance": chance,
        "n": len(every),
        "by_relation": per,
        "by_bucket": {b: {"accuracy": sum(h) / len(h), "n": len(h)} for b, h in by_bucket.items()},
    }


def gold_by_family(model, tokenizer, world, records: list[dict], *, max_new_tokens: int = 48) -> dict:
    """Mean gold score and flag rates per family for greedy answers; also the answers themselves."""
    answers = chat_complete(model, tokenizer, [r["messages"] for r in records], max_new_tokens=max_new_tokens)
    rows: dict[str, list] = defaultdict(list)
    samples = []
    for record, answer in zip(records, answers):
        j = world.judge(record, answer)
        rows[j.family].append(j)
        samples.append(
            {
                "id": record["id"],
                "family": j.family,
                "prompt": record["messages"][-1]["content"],
                "answer": answer,
                "score": j.score,
                "outcome": j.outcome,
            }
        )
    families = {}
    for family, js in sorted(rows.items(), key=lambda kv: FAMILY_NAMES.index(kv[0])):
        families[family] = {
            "gold_score": sum(j.score for j in js) / len(js),
            "n": len(js),
            **{
                f"{flag}_rate": sum(flag in j.flags for j in js) / len(js)
                for flag in ("fails_task", "hallucination", "harmful", "over_refusal")
            },
        }
    every = [j.score for js in rows.values() for j in js]
    return {"gold_score": sum(every) / len(every), "by_family": families, "samples": samples}
