"""Issue 35, part 3: what each gold-scorer rule changed in the headroom gate. Every greedy answer and sample a
`posttrain world headroom` run wrote is judged again by the gold scorer as it was at several revisions, and
the headline numbers are recomputed from those scores.

    nice -n 19 env OMP_NUM_THREADS=1 .venv/bin/python bench/rejudge_headroom.py runs/demo/headroom \
        [--scale small] [--world-seed 0] [--prompts runs/demo/world/test.jsonl] [--revs REV,REV,...]

The default revisions isolate each batch of rules: 4c9ab54^ (before any rule), 4c9ab54 (false_correction,
refused_other, repeated phrases cost like typos), 34c4787^ (no rule, but the two test sets came between and
taught the vocabulary every template: it keeps their change out of 34c4787's), 34c4787 (garbled words cost
like typos, another family's question never passes), a039be2 (the vocabulary knows every corpus word) and
HEAD (the same commit as a039be2 when nothing came after; a repeat is judged once). Each revision is a
`git archive` snapshot judged in its own Python with PYTHONPATH set to the snapshot; that Python prints the
`posttrain/__init__.py` it imported, which must be the snapshot's. The arithmetic is this checkout's
posttrain.evaluation.headroom (prompt_numbers, result_json): the reward model's scores stay as the run
wrote them, only the gold score of what it picks changes. HEAD's numbers must equal headroom.json's (the
script exits with an error when they do not: the run was judged by another scorer, or the world options
differ). Per revision, against the one before: how many answers changed outcome (the family outcome's
name) and score, and the three most common changes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

from posttrain.data.records import read_conversations, read_jsonl
from posttrain.errors import UserError
from posttrain.evaluation.headroom import prompt_numbers, result_json

ROOT = Path(__file__).resolve().parent.parent
REVISIONS = {  # the default, in order, with what each adds to the one before
    "4c9ab54^": "before any rule",
    "4c9ab54": "false_correction, refused_other, repeats",
    "34c4787^": "test sets and their vocabulary (no rule)",
    "34c4787": "garbled words, another family's question",
    "a039be2": "vocabulary knows every corpus word",
    "HEAD": "this checkout's commit",
}

# Run in the snapshot's Python: judge every text of the job, print posttrain.__file__ then one JSON line.
JUDGE = """
import json, sys
import posttrain
print(posttrain.__file__, flush=True)
from posttrain.world import World
job = json.load(open(sys.argv[1]))
item = None
try:
    world = World(seed=job["seed"], scale=job["scale"])
    out = []
    for item in job["items"]:
        judged = [world.judge(item["record"], t) for t in item["texts"]]
        out.append([[j.score, j.outcome] for j in judged])
except Exception as e:
    where = "" if item is None or item["record"]["id"] in str(e) else f"record {item['record']['id']!r}: "
    sys.exit(f"{where}{type(e).__name__}: {e}")
print(json.dumps(out))
"""


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout


def resolve(revs: list[str]) -> list[tuple[str, str]]:
    """(name, commit) of each revision, a commit named twice kept once (its first name); HEAD must be one."""
    out: dict[str, str] = {}
    for rev in revs:
        try:
            commit = git("rev-parse", "--verify", "--short", f"{rev}^{{commit}}").strip()
        except subprocess.CalledProcessError:
            raise SystemExit(f"--revs: {rev!r} is not a commit of {ROOT}") from None
        out.setdefault(commit, rev)
    head = git("rev-parse", "--short", "HEAD").strip()
    if head not in out:
        raise SystemExit("--revs must include HEAD (its numbers are checked against headroom.json)")
    return [(name, commit) for commit, name in out.items()]


def load(folder: Path, prompts: Path | None) -> tuple[dict, list[dict], list[dict]]:
    """(headroom.json, samples.jsonl's rows, the prompt records in the same order)."""
    try:
        result = json.loads((folder / "headroom.json").read_text())
        rows = [r for _, r in read_jsonl(folder / "samples.jsonl")]
        prompts = prompts or Path(result["config"]["prompts"])
        records = read_conversations(prompts, ends_with="user")
    except (OSError, KeyError, json.JSONDecodeError, UserError) as e:
        raise SystemExit(
            f"{folder}: not a `posttrain world headroom` output ({type(e).__name__}: {e})"
        ) from None
    ids = [r["id"] for r in records]
    if [r["id"] for r in rows] != ids:
        raise SystemExit(
            f"{folder}/samples.jsonl: its {len(rows)} rows are not {prompts}'s {len(ids)} prompts in order; "
            "pass the prompts the run used with --prompts"
        )
    return result, rows, records


def judge_at(name: str, commit: str, items: list[dict], scale: str, seed: int) -> list[list[tuple]]:
    """Per prompt, (gold score, outcome) of the greedy answer then each sample, by the scorer at `commit`."""
    with tempfile.TemporaryDirectory(prefix=f"rejudge-{commit}-") as tmp:
        snapshot, job = Path(tmp) / "src", Path(tmp) / "job.json"
        snapshot.mkdir()
        archive = subprocess.Popen(["git", "-C", str(ROOT), "archive", commit], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(snapshot)], stdin=archive.stdout, check=True)
        if archive.wait():
            raise SystemExit(f"git archive {commit} failed (exit code {archive.returncode})")
        job.write_text(json.dumps({"scale": scale, "seed": seed, "items": items}))
        done = subprocess.run(
            [sys.executable, "-c", JUDGE, str(job)],
            cwd=snapshot,  # python -c puts the working directory first on sys.path: the snapshot, not ROOT
            env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(snapshot)},
            capture_output=True,
            text=True,
        )
        lines = done.stdout.splitlines()
        if done.returncode or len(lines) != 2:
            why = done.stderr.strip().splitlines()[-1:] or ["no output"]
            raise SystemExit(
                f"{name} ({commit}) cannot judge this world (--scale {scale} --world-seed {seed}): {why[0]}"
            )
        if not Path(lines[0]).resolve().is_relative_to(snapshot.resolve()):
            raise SystemExit(
                f"{name} ({commit}): its Python imported {lines[0]}, not the snapshot's posttrain"
            )
        print(f"{name} ({commit}) judged by {lines[0]}", flush=True)
        return [[tuple(a) for a in answers] for answers in json.loads(lines[1])]


def recompute(result: dict, rows: list[dict], judged: list[list[tuple]]) -> dict:
    """headroom.json's content with every gold score replaced by the re-judged one (the RM's kept)."""
    ns, numbers = result["n"], []
    for row, answers in zip(rows, judged):
        rm = [s["rm"] for s in row["samples"]] if "rm" in row["samples"][0] else None
        gold = [score for score, _ in answers[1:]]
        numbers.append((row["family"], prompt_numbers(answers[0][0], gold, rm, ns)))
    return json.loads(json.dumps(result_json(SimpleNamespace(**result["config"]), ns, numbers)))


def check_head(result: dict, ours: dict, rows: list[dict], judged: list[list[tuple]]) -> None:
    """HEAD's gold scores are samples.jsonl's and its recomputed numbers headroom.json's, to the last bit;
    else exit saying what differs."""
    stored = [[row["greedy"]["gold"], *(s["gold"] for s in row["samples"])] for row in rows]
    moved = sum(s != a[0] for st, an in zip(stored, judged) for s, a in zip(st, an))
    if ours == result and not moved:
        return
    fields = [f"{group}.{k}" for group in ["all", *result["by_family"]] for k in result["all"]]
    differ = [f for f in fields if lookup(ours, f) != lookup(result, f)] or ["its families"]
    raise SystemExit(
        f"HEAD's gold scorer does not reproduce this run: {moved} of {sum(map(len, stored))} gold scores in "
        f"samples.jsonl differ from HEAD's"
        + (
            f", and headroom.json's {', '.join(differ[:4])} differ from the recomputed"
            if ours != result
            else ""
        )
        + "; the run was judged by another revision or world (--scale, --world-seed), or its files were "
        "edited: run `posttrain world headroom` again on HEAD"
    )


def lookup(result: dict, field: str):
    group, key = field.rsplit(".", 1)
    part = result["all"] if group == "all" else result["by_family"].get(group, {})
    return part.get(key)


def changes(rows: list[dict], before: list[list[tuple]], after: list[list[tuple]]) -> tuple[int, int, list]:
    """(answers whose outcome changed, answers whose score changed, the 3 most common changes with counts)."""
    outcome, score, kinds = 0, 0, Counter()
    for row, was, now in zip(rows, before, after):
        for (s0, o0), (s1, o1) in zip(was, now):
            outcome += o0 != o1
            score += s0 != s1
            if o0 != o1:
                kinds[f"{row['family']} {o0}->{o1}"] += 1
            elif s0 != s1:
                kinds[f"{row['family']} {o0} score {'down' if s1 < s0 else 'up'}"] += 1
    # outcome transitions before score-only changes of the same count
    top = sorted(kinds.items(), key=lambda kv: (-kv[1], " score " in kv[0]))[:3]
    return outcome, score, top


def world_commits(before: str, after: str) -> int:
    """Commits after `before` up to `after` that touch posttrain/world (what a revision step holds)."""
    return len(git("rev-list", f"{before}..{after}", "--", "posttrain/world").split())


def table(revs: list[tuple[str, str]], numbers: list[dict], steps: list, world: list[int | None]) -> str:
    """What each revision adds, then one row per revision: the headline numbers and the changes."""
    k = str(numbers[0]["n"][-1])
    has_rm = "rm_win_rate" in numbers[0]["all"]
    head = ["revision", "world commits", "greedy", "sampled", f"oracle@{k}", "any>greedy"]
    head += [f"rm@{k}", "captured"] if has_rm else []
    head += ["outcome changed", "score changed", "most common changes (vs the row above)"]
    rows = []
    for (name, _), r, step, w in zip(revs, numbers, steps, world):
        a = r["all"]
        cells = [name, "-" if w is None else str(w), f"{a['greedy_gold']:.3f}", f"{a['sampled_gold']:.3f}"]
        cells += [f"{a['oracle_win_rate'][k]:.1%}", f"{a['any_better']:.1%}"]
        if has_rm:
            share = a["rm_captured"]
            cells += [f"{a['rm_win_rate'][k]:.1%}", "-" if share is None else f"{share:.0%}"]
        if step is None:
            cells += ["-", "-", "-"]
        else:
            cells += [str(step[0]), str(step[1]), ", ".join(f"{c} x{n}" for c, n in step[2]) or "none"]
        rows.append(cells)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]

    def line(cells: list[str]) -> str:
        padded = [
            c.ljust(w) if i in (0, len(cells) - 1) else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths))
        ]
        return "  ".join(padded).rstrip()

    tag = {git("rev-parse", "--short", "HEAD").strip(): " = HEAD"}
    legend = [
        f"{name:<{widths[0]}}  {commit + tag.get(commit, ''):<14}  {label(name, commit)}"
        for name, commit in revs
    ]
    key = (
        "world commits: commits since the row above that touch posttrain/world; a change is the outcome's "
        "(family outcome -> outcome), else the score's"
    )
    return "\n".join([*legend, "", line(head), *(line(r) for r in rows), key])


def label(name: str, commit: str) -> str:
    """What a default revision adds to the one before; else the commit's subject, cut short."""
    subject = git("log", "-1", "--format=%s", commit).strip()
    return REVISIONS.get(name) or (subject if len(subject) <= 70 else subject[:67] + "...")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path, help="a `posttrain world headroom` --out folder")
    p.add_argument("--scale", default="small", help="the world's scale the run used (default small)")
    p.add_argument("--world-seed", type=int, default=0, help="the world's seed the run used (default 0)")
    p.add_argument("--prompts", type=Path, help="the prompts the run used (default: headroom.json's)")
    p.add_argument(
        "--revs",
        default=",".join(REVISIONS),
        help="comma-separated revisions, oldest first (default: %(default)s)",
    )
    args = p.parse_args()
    revs = resolve([r.strip() for r in args.revs.split(",") if r.strip()])
    result, rows, records = load(args.folder, args.prompts)
    items = [
        {"record": rec, "texts": [row["greedy"]["text"], *(s["text"] for s in row["samples"])]}
        for rec, row in zip(records, rows)
    ]
    judged = [judge_at(name, commit, items, args.scale, args.world_seed) for name, commit in revs]
    numbers = [recompute(result, rows, j) for j in judged]
    head = git("rev-parse", "--short", "HEAD").strip()
    at_head = [c for _, c in revs].index(head)
    check_head(result, numbers[at_head], rows, judged[at_head])
    steps = [None, *(changes(rows, a, b) for a, b in zip(judged, judged[1:]))]
    world = [None, *(world_commits(a, b) for (_, a), (_, b) in zip(revs, revs[1:]))]
    n = sum(len(i["texts"]) for i in items)
    print(f"{len(rows)} prompts, {n} answers (greedy and samples) re-judged; HEAD matches headroom.json")
    print(table(revs, numbers, steps, world))


if __name__ == "__main__":
    main()
