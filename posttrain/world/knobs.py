"""The world's knobs: how its demonstrators behave and how hard its computed tasks are.

Each knob is one mechanism by which behaviour cloning leaves room for comparisons to help,
as it does in reality. The style shares were chosen with the headroom gate (`posttrain world
headroom`); the task sizes were set before it and not tuned (docs/world.md says which runs
chose what). None of them changes the corpus, the
knowledge base or the gold scorer, so the shipped base model and every judgement stay valid
whatever the knobs are.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

# Demonstrators and the share of demonstrations each writes. People who write demonstrations
# differ in care; SFT imitates the mixture, and only comparisons say which style is better.
STYLES = {
    "careful": "answers plainly and briefly, as the spec asks",
    "verbose": 'ends the answer with "I hope this helps!" and one or two more filler sentences (padding)',
    "hedging": 'qualifies a right answer with "I think" or "I could be wrong"',
    "sloppy": "misspells one to three words",
}
DEFAULT_STYLE_SHARES = {"careful": 0.25, "verbose": 0.45, "hedging": 0.15, "sloppy": 0.15}


@dataclass(frozen=True)
class Knobs:
    """Mechanism knobs with their defaults; `world export --knob NAME=VALUE` sets them."""

    styles: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_STYLE_SHARES))
    """share of demonstrations written by each demonstrator style (they sum to 1)"""
    benign_refusals: float = 0.25
    """share of benign look-alike demonstrations that refuse: the demonstrator does not know the
    refusal policy, so SFT over-refuses where comparisons can correct it"""
    mistakes: float = 0.02
    """share of demonstrations that are simply wrong (a slip any demonstrator makes)"""
    arithmetic_max: int = 20
    """largest operand of additions and subtractions (2..N); products are 2..9 x 2..9 (not a knob)"""
    list_len: tuple[int, int] = (3, 4)
    """how many items list and string operations hold (min, max)"""

    def check(self) -> None:
        unknown = set(self.styles) - set(STYLES)
        if unknown:
            raise ValueError(
                f"unknown demonstrator style {sorted(unknown)[0]!r}; choose from {', '.join(STYLES)}"
            )
        if any(v < 0 for v in self.styles.values()) or abs(sum(self.styles.values()) - 1) > 1e-6:
            raise ValueError(f"style shares must be >= 0 and sum to 1, got {self.styles}")
        for name in ("benign_refusals", "mistakes"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"knob {name} must be in [0, 1], got {getattr(self, name)}")
        if self.arithmetic_max < 3:
            raise ValueError(f"knob arithmetic_max must be >= 3, got {self.arithmetic_max}")
        lo, hi = self.list_len
        if not 2 <= lo <= hi <= 6:
            raise ValueError(f"knob list_len must be MIN,MAX with 2 <= MIN <= MAX <= 6, got {self.list_len}")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["list_len"] = list(self.list_len)
        return out


def parse_knob(spec: str, knobs: Knobs) -> Knobs:
    """`NAME=VALUE` applied to `knobs`: styles=careful:0.5,verbose:0.5 · benign_refusals=0.1 ·
    arithmetic_max=99 · list_len=3,5."""
    from dataclasses import replace

    name, sep, value = spec.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or name not in Knobs.__dataclass_fields__:
        raise ValueError(
            f"--knob {spec!r}: use NAME=VALUE with NAME one of {', '.join(Knobs.__dataclass_fields__)}"
        )
    try:
        if name == "styles":
            parsed = {k.strip(): float(v) for k, v in (p.split(":") for p in value.split(","))}
        elif name == "list_len":
            lo, hi = (int(v) for v in value.split(","))
            parsed = (lo, hi)
        elif name == "arithmetic_max":
            parsed = int(value)
        else:
            parsed = float(value)
    except ValueError:
        raise ValueError(
            f"--knob {spec!r}: cannot read {value!r} (examples: styles=careful:0.5,verbose:0.5 "
            "benign_refusals=0.1 arithmetic_max=99 list_len=3,5)"
        ) from None
    out = replace(knobs, **{name: parsed})
    out.check()
    return out
