"""The World: one seed and scale decide every entity, prompt, demonstration and document."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace
from functools import cached_property

from posttrain.world import lexicon, text
from posttrain.world.families import FAMILY_CLASSES, Family
from posttrain.world.families.base import phrasing_words, pick
from posttrain.world.kb import PERSON_RELATIONS, RELATIONS, KnowledgeBase, add_tail, build_kb
from posttrain.world.knobs import Knobs
from posttrain.world.rng import derive
from posttrain.world.scorer import GoldScorer, Judgement
from posttrain.world.styles import styled


@dataclass(frozen=True)
class Scale:
    """How big a world is. `paper` keeps InstructGPT's proportions (Ouyang et al. 2022, Table 6:
    about 13k SFT demonstrations, 33k RM prompts, 31k PPO prompts)."""

    name: str
    countries: int
    people: int
    recipes: int
    demos: int
    rm_prompts: int
    ppo_prompts: int
    test_prompts: int
    corpus_docs: int
    heldout_docs: int
    tail_countries: int = 0  # the long tail of knowledge (kb.add_tail); 0: none
    tail_people: int = 0
    corpus_tokens: int = 0  # > 0: world/corpus_scaled.py's corpus of about this many tokens, not corpus_docs


SMALL = Scale(
    "small",
    countries=24,
    people=24,
    recipes=12,
    demos=1800,
    rm_prompts=900,
    ppo_prompts=900,
    test_prompts=450,
    corpus_docs=6000,
    heldout_docs=300,
)
SCALES = {
    "small": SMALL,
    "paper": Scale(
        "paper",
        countries=48,
        people=48,
        recipes=24,
        demos=13000,
        rm_prompts=33000,
        ppo_prompts=31000,
        test_prompts=2700,
        corpus_docs=40000,
        heldout_docs=2000,
    ),
    # The small world's head (the same entities, templates and prompts' families) with a long tail
    # of knowledge and a corpus of tens of millions of tokens: the world of the capable base
    # (docs/world.md, "The second small world"). `corpus_docs` is unused when `corpus_tokens` is set.
    "small2": replace(
        SMALL,
        name="small2",
        corpus_docs=0,
        heldout_docs=2000,
        tail_countries=40,
        tail_people=40,
        corpus_tokens=80_000_000,
    ),
}
TEST_SHARE = 0.25  # share of entities held out for test prompts

SYSTEM_PROMPTS = (
    "You are a helpful assistant.",
    "You are a helpful, honest and harmless assistant.",
    "Answer the user's questions clearly and briefly.",
)
SYSTEM_SHARE = 0.2
DISTINCT_TRIES = 100  # draws of a test prompt before a repeat is allowed (World.prompts)

BENIGN_REFUSALS = (
    "I'm sorry, but I can't help with anything that could cause harm.",
    "I can't help with that, as it sounds like it could be dangerous.",
    "Sorry, I won't give instructions for that. Please ask a professional.",
)


class World:
    def __init__(self, seed: int = 0, scale: str = "small", knobs: Knobs | None = None):
        if scale not in SCALES:
            raise ValueError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
        self.seed = seed
        self.scale = SCALES[scale]
        self.knobs = knobs or Knobs()
        self.knobs.check()
        s = self.scale
        self.kb: KnowledgeBase = build_kb(
            derive(seed, "kb"), s.countries, s.people, s.recipes, TEST_SHARE, avoid=set(lexicon.FILLER)
        )
        if s.tail_countries or s.tail_people:
            self.kb = add_tail(
                self.kb,
                derive(seed, "kb", "tail"),
                s.tail_countries,
                s.tail_people,
                TEST_SHARE,
                avoid=set(lexicon.FILLER),
            )
        self.families: dict[str, Family] = {c.name: c(self.kb, self.knobs) for c in FAMILY_CLASSES}

    # --- prompts -------------------------------------------------------------------
    def record(self, family: str, split: str, rng: random.Random, rid: str) -> dict:
        """A fresh prompt record (conversation format) of `family` from `split` (families.SPLITS)."""
        fam = self.families[family]
        task = fam.sample(rng, split)
        template = rng.randrange(fam.n_templates(task, split))
        return self._render(rid, fam, task, split, template, system=self._system(rng))

    def prompt_for(
        self, family: str, task: dict, split: str = "train", template: int = 0, rid: str = "custom"
    ) -> dict:
        """The prompt record for a given task (tests and tools build exact cases with it)."""
        return self._render(rid, self.families[family], task, split, template, system=None)

    def _system(self, rng: random.Random) -> str | None:
        return pick(rng, SYSTEM_PROMPTS) if rng.random() < SYSTEM_SHARE else None

    def _render(
        self, rid: str, fam: Family, task: dict, split: str, template: int, system: str | None
    ) -> dict:
        messages = fam.render(task, split, template)
        if system:
            messages = [{"role": "system", "content": system}, *messages]
        meta = {"family": fam.name, "split": split, "template": template, "task": task}
        return {"id": rid, "messages": messages, "source": f"world:{split}", "meta": meta}

    def prompts(self, purpose: str, n: int, split: str) -> list[dict]:
        """`n` prompts, families in equal shares, from a stream of their own per purpose.

        A test split's prompts are distinct: a prompt whose turns (system prompt aside) an earlier one has is
        drawn again, up to DISTINCT_TRIES times (a family with fewer distinct prompts than asked repeats
        some; the small world's 450 have none). Training prompts repeat as they fall.
        """
        rng = derive(self.seed, "prompts", purpose)
        names = list(self.families)
        seen: set[str] = set()
        records = []
        for i in range(n):
            for _ in range(DISTINCT_TRIES if split != "train" else 1):
                record = self.record(names[i % len(names)], split, rng, f"{purpose}-{i:06d}")
                key = json.dumps([m for m in record["messages"] if m["role"] != "system"])
                if key not in seen:
                    break
            seen.add(key)
            records.append(record)
        rng.shuffle(records)
        return records

    def paraphrase(self, record: dict, rng: random.Random) -> dict:
        """The same task worded by another template of its split (when the family has one)."""
        meta = record["meta"]
        fam = self.families[meta["family"]]
        n = fam.n_templates(meta["task"], meta["split"])
        others = [t for t in range(n) if t != meta["template"]] or [meta["template"]]
        system = next((m["content"] for m in record["messages"] if m["role"] == "system"), None)
        return self._render(
            record["id"] + "-para", fam, meta["task"], meta["split"], pick(rng, others), system
        )

    # --- answers -------------------------------------------------------------------
    def demonstrate(self, record: dict, rng: random.Random) -> str:
        return self.families[record["meta"]["family"]].demonstrate(record["meta"]["task"], rng)

    def wrong_answers(self, record: dict, rng: random.Random) -> dict[str, str]:
        return self.families[record["meta"]["family"]].wrong_answers(record["meta"]["task"], rng)

    def judge(self, record: dict, response: str) -> Judgement:
        return self.scorer.judge(record, response)

    def check_tasks(self, records: list[dict]) -> None:
        """Refuse, before any model runs, records whose world task the gold scorer cannot judge."""
        for r in records:
            self.scorer.judge(r, "")

    @cached_property
    def scorer(self) -> GoldScorer:
        return GoldScorer(self.families, self.vocabulary)

    @cached_property
    def vocabulary(self) -> text.Vocabulary:
        """Every word the world writes: prompts, answers good and bad, names and documents."""
        from posttrain.world import corpus, corpus_scaled  # they import this module's helpers lazily

        known: set[str] = set()
        for name in sorted(self.families):
            for split in ("train", "test"):
                rng = derive(self.seed, "vocabulary", name, split)
                for i in range(120):
                    rec = self.record(name, split, rng, f"v{i}")
                    answers = [self.demonstrate(rec, derive(k, rec["id"])) for k in range(4)]
                    answers += self.wrong_answers(rec, rng).values()
                    for piece in [m["content"] for m in rec["messages"]] + answers:
                        known.update(text.words(piece))
        pieces = [*corpus.phrases(), *lexicon.HEDGE_OPENERS, *lexicon.HEDGE_CLOSERS, *BENIGN_REFUSALS]
        # every template of every split, not only those the samples above happened to draw
        pieces += [
            phrasing_words(t) for name in sorted(self.families) for t in self.families[name].phrasings()
        ]
        if (
            self.scale.corpus_tokens
        ):  # the scaled corpus writes more phrasings (the small world's words stay as they were)
            pieces += corpus_scaled.phrases()
        for piece in pieces:
            known.update(text.words(piece))
        for name in self.kb.names():
            known.update(text.words(name))
        for relation in (*RELATIONS, *PERSON_RELATIONS):  # "bear" too, whether or not a sample above drew it
            for value in self.kb.values(relation):
                known.update(text.words(value))
        return text.Vocabulary(known)

    # --- demonstrations --------------------------------------------------------------
    def demonstrations(self, n: int) -> list[dict]:
        """`n` demonstrations in chat format, each written by one demonstrator style (`knobs.styles`).

        The demonstrator knows the whole knowledge base and always has the right content; its
        style is what varies (padding, hedges, typos), plus the two slips of real demonstrators:
        a plain mistake (`knobs.mistakes`) and refusing a benign look-alike (`knobs.benign_refusals`).
        `source` and `meta` record the style and every flaw.
        """
        rng = derive(self.seed, "demonstrations")
        styles, shares = zip(*sorted(self.knobs.styles.items()))
        out = []
        for rec in self.prompts("demo", n, "train"):
            style = rng.choices(styles, shares)[0]
            answer, flaws = self.demonstrate(rec, rng), []
            if rec["meta"]["family"] == "benign" and rng.random() < self.knobs.benign_refusals:
                answer, flaws = pick(rng, BENIGN_REFUSALS), ["over_refusal"]
            elif rng.random() < self.knobs.mistakes:
                answer, flaws = pick(rng, list(self.wrong_answers(rec, rng).values())), ["mistake"]
            answer = styled(answer, style, rng)
            flaws += [] if style == "careful" else [style]
            rec = {
                **rec,
                "messages": [*rec["messages"], {"role": "assistant", "content": answer}],
                "source": f"demonstrator:{style}",
                "meta": {**rec["meta"], "demonstrator": style, "flaws": flaws},
            }
            out.append(rec)
        return out
