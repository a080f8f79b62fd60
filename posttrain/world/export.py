"""`posttrain world export`: write a world's files in the formats of docs/design.md, atomically.

    DIR/
      corpus.jsonl          pretraining documents {"id", "text", "kind"}
      corpus_heldout.jsonl  held-out documents of the same kinds (alignment tax: held-out LM loss)
      demos.jsonl           demonstrations, conversation format, some flawed on purpose (meta.flaws)
      prompts_rm.jsonl      prompts to sample K completions from and rank (train entities and templates)
      prompts_ppo.jsonl     prompts for PPO (train entities and templates)
      dev.jsonl             prompts to choose between policies on (train entities; `posttrain loop`)
      test.jsonl            the headline test: held-out prompts in the training phrasings' style (test
                            entities and numbers, phrasings held out of the training files' pool;
                            meta.split "test")
      test_novel.jsonl      the same held-out entities and numbers in phrasings of another style (meta.split
                            "test_novel"): how far behaviour carries to new wordings
      kb.json               the knowledge base
      spec.md               the model spec, generated from the gold scorer's rules
      manifest.json         seed, scale, counts per family and kind, sha256 of every file; for a corpus cut
                            short (--corpus-documents N), corpus_prefix: {"documents": N, "of": the whole's}

Same seed and scale give byte-identical files; with --corpus-documents N, corpus.jsonl is the first N lines
of the whole export's, byte for byte, and the other data files are the whole export's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from posttrain import __version__
from posttrain.config import Options, Overwrite, WorldPick, option
from posttrain.data.records import umask, write_jsonl
from posttrain.errors import UserError
from posttrain.world import corpus, corpus_scaled
from posttrain.world.families import FAMILY_NAMES
from posttrain.world.spec import render_spec


@dataclass(kw_only=True)
class WorldExportConfig(Options, Overwrite, WorldPick):
    out: Path = option(
        help="directory to write the world to (created; must be new or empty unless --force)", required=True
    )
    knob: list[str] = option(
        [],
        nargs="+",
        help="world mechanism knobs as NAME=VALUE, e.g. --knob styles=careful:1 "
        "benign_refusals=0 arithmetic_max=99 list_len=3,5 "
        "(docs/world.md lists them; default: every knob at its default)",
    )
    corpus_documents: int | None = option(
        None,
        help="write only the corpus's first N documents to corpus.jsonl, byte for byte the first N lines of "
        "the whole export's, and record the cut in manifest.json (corpus_prefix); corpus_heldout.jsonl "
        "stays whole. For a pretraining mix that needs far fewer than small2's 1.28M documents, as the "
        "demo's PPO-ptx does; not given: the whole corpus",
        ge=1,
    )

    def knobs(self):
        """The knobs this export asks for (defaults where not set), or a UserError naming the bad one."""
        from posttrain.world.knobs import Knobs, parse_knob

        knobs = Knobs()
        for spec in self.knob:
            try:
                knobs = parse_knob(spec, knobs)
            except ValueError as e:
                raise UserError(str(e)) from None
        return knobs


PROMPT_FILES = {
    "demos.jsonl": "demos",
    "prompts_rm.jsonl": "rm",
    "prompts_ppo.jsonl": "ppo",
    "dev.jsonl": "dev",
    "test.jsonl": "test",
    "test_novel.jsonl": "test_novel",
}


def export(
    world,
    out: str | Path,
    *,
    force: bool = False,
    on_step: Callable[[str], None] = lambda s: None,
    corpus_documents: int | None = None,
) -> dict:
    """Write the world to `out` and return the manifest. The directory appears whole or not at all.
    `corpus_documents`: corpus.jsonl holds only the corpus's first N documents (None: all)."""
    out = Path(out)
    check_out(out, force)
    if force and out.is_dir() and any(out.iterdir()):
        check_world(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o777 & ~umask())
    try:
        manifest = _write(world, tmp, on_step, corpus_documents)
        if out.exists():
            old = out.with_name(f".{out.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def check_out(out: Path, force: bool) -> None:
    """Refuse to overwrite a non-empty directory (or a file) unless forced."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file; --out must name a directory")
    if out.exists() and any(out.iterdir()) and not force:
        raise UserError(
            f"{out} already exists and is not empty; choose another --out or pass --force to replace it"
        )


def check_world(out: Path) -> None:
    """--force replaces only a world export: a folder whose every entry its manifest.json lists (issue 28:
    `--out runs --force` deleted runs/ and every model in it)."""
    from posttrain.data.outputs import foreign_entries, named

    try:
        listed = [*json.loads((out / "manifest.json").read_text())["sha256"], "manifest.json"]
    except (OSError, ValueError, KeyError, TypeError):
        listed = []
    other = foreign_entries(out, listed)
    if not listed or other:
        what = (
            f"holds files a world export did not write ({named(other)})"
            if listed
            else ("is not a world export (no manifest.json)")
        )
        raise UserError(
            f"--out {out} {what}; --force replaces only a world export: choose another --out, "
            "or move it away yourself if it may go"
        )


def _write(world, d: Path, on_step, corpus_documents: int | None) -> dict:
    s = world.scale
    counts: dict[str, dict] = {}
    whole = 0  # documents in the whole corpus, of which corpus.jsonl holds the first

    def train_corpus() -> list[dict]:
        nonlocal whole
        docs, whole = first_documents(world, corpus_documents)
        return docs

    steps = [
        ("corpus.jsonl", train_corpus),
        (
            "corpus_heldout.jsonl",
            lambda: (
                corpus_scaled.documents(world, "heldout", n=s.heldout_docs)
                if s.corpus_tokens
                else corpus.documents(world, s.heldout_docs, "heldout")
            ),
        ),
        ("demos.jsonl", lambda: world.demonstrations(s.demos)),
        ("prompts_rm.jsonl", lambda: world.prompts("rm", s.rm_prompts, "train")),
        ("prompts_ppo.jsonl", lambda: world.prompts("ppo", s.ppo_prompts, "train")),
        ("dev.jsonl", lambda: world.prompts("dev", s.test_prompts // 2, "train")),
        ("test.jsonl", lambda: world.prompts("test", s.test_prompts, "test")),
        ("test_novel.jsonl", lambda: world.prompts("test_novel", s.test_prompts, "test_novel")),
    ]
    for name, make in steps:
        on_step(name)
        records = make()
        write_jsonl(d / name, records)
        key = "kind" if name.startswith("corpus") else None
        counts[name] = dict(Counter(r["kind"] if key else r["meta"]["family"] for r in records))
    on_step("kb.json")
    (d / "kb.json").write_text(json.dumps(world.kb.to_json(), indent=1, ensure_ascii=False) + "\n")
    on_step("spec.md")
    (d / "spec.md").write_text(render_spec(world))
    written = sum(counts["corpus.jsonl"].values())
    manifest = {
        "posttrain": __version__,
        "seed": world.seed,
        "scale": dataclasses.asdict(s),
        "knobs": world.knobs.to_dict(),
        "counts": counts,
        # a cut corpus says so: its sha256 below is the prefix's, and must never pass for the whole corpus's
        **({"corpus_prefix": {"documents": written, "of": whole}} if written < whole else {}),
        "sha256": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())},
    }
    (d / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def first_documents(world, n: int | None) -> tuple[list[dict], int]:
    """The training corpus's first `n` documents (all when None or more than it holds), and how many the
    whole corpus holds. The small corpus draws document after document, so its first n cost n draws. The
    scaled one (corpus_scaled.documents) shuffles its documents once all are drawn, so its first n cost
    drawing them all and a cut saves only the writing: drawing in order would change small2's corpus, the
    one its base model is pretrained on."""
    s = world.scale
    if s.corpus_tokens:
        docs = corpus_scaled.documents(world, "train", tokens=s.corpus_tokens)
        return docs[:n], len(docs)
    return corpus.documents(world, min(n or s.corpus_docs, s.corpus_docs), "train"), s.corpus_docs


def counts_table(manifest: dict) -> str:
    """Families down, prompt files across; then the corpus by kind."""
    files = list(PROMPT_FILES)
    families = [f for f in FAMILY_NAMES if any(f in manifest["counts"][n] for n in files)]
    width = {n: max(8, len(PROMPT_FILES[n]) + 2) for n in files}
    header = f"{'family':<15}" + "".join(f"{PROMPT_FILES[n]:>{width[n]}}" for n in files)
    rows = [header, "-" * len(header)]
    for fam in families:
        rows.append(f"{fam:<15}" + "".join(f"{manifest['counts'][n].get(fam, 0):>{width[n]}}" for n in files))
    rows.append(
        f"{'total':<15}" + "".join(f"{sum(manifest['counts'][n].values()):>{width[n]}}" for n in files)
    )
    docs = manifest["counts"]["corpus.jsonl"]
    rows += [
        "",
        f"corpus: {sum(docs.values())} documents ("
        + ", ".join(f"{k} {v}" for k, v in sorted(docs.items(), key=lambda kv: -kv[1]))
        + "), "
        f"held out: {sum(manifest['counts']['corpus_heldout.jsonl'].values())}",
    ]
    if "corpus_prefix" in manifest:
        cut = manifest["corpus_prefix"]
        rows.append(f"corpus.jsonl is the first {cut['documents']} of the corpus's {cut['of']} documents")
    return "\n".join(rows)
