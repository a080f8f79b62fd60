"""Every numeric option declares its range, and every config refuses a value outside it with the option's
name.

Walks every command's config (the registry) and the configs nested in them, so a new option that
forgets its range fails here.
"""

import dataclasses
import math
import typing
from pathlib import Path

import pytest

from posttrain.arguments import _scalar, flag
from posttrain.cli import build_parser, main
from posttrain.commands import COMMANDS, GROUPS
from posttrain.errors import UserError

build_parser()
CONFIGS = sorted({c.config for c in COMMANDS}, key=lambda c: f"{c.__module__}.{c.__name__}")


def numeric_fields(cls: type, prefix: str = "") -> list[tuple[str, str, dataclasses.Field]]:
    """(path to the field, its flag, the field) for every int or float option, nested configs included."""
    hints, out = typing.get_type_hints(cls), []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out += [(f"{f.name}.{p}", fl, g) for p, fl, g in numeric_fields(tp, f"{prefix}{f.name}_")]
        elif _scalar(tp) in (int, float) and tp is not bool:
            out.append((f.name, flag(prefix + f.name), f))
    return out


def build(cls: type):
    """The config at its defaults, with a placeholder for each required option."""
    hints = typing.get_type_hints(cls)
    required = {
        f.name: (
            ["x"]
            if _scalar(hints[f.name]) is str and "list" in str(hints[f.name])
            else Path("x")
            if _scalar(hints[f.name]) is Path
            else "x"
        )
        for f in dataclasses.fields(cls)
        if f.metadata.get("required")
    }
    return cls(**required)


def set_field(cfg, path: str, value) -> None:
    *parents, name = path.split(".")
    for p in parents:
        cfg = getattr(cfg, p)
    setattr(cfg, name, [value] if isinstance(getattr(cfg, name), list) else value)


def inside(f: dataclasses.Field, value: float) -> bool:
    b = f.metadata["bounds"]
    return math.isfinite(value) and all(
        {"ge": value >= v, "gt": value > v, "le": value <= v, "lt": value < v}[k] for k, v in b.items()
    )


CASES = [(cls, path, fl, f) for cls in CONFIGS for path, fl, f in numeric_fields(cls)]


def test_the_walk_finds_the_configs_and_their_nested_options():
    names = {fl for _, _, fl, _ in CASES}
    assert (
        len(CONFIGS) >= 25
        and {"--micro-batch", "--eval-fraction", "--lr", "--ppo-lr", "--rm-lr", "--port"} <= names
    )


@pytest.mark.parametrize("cls", CONFIGS, ids=lambda c: c.__name__)
def test_every_numeric_option_declares_its_range_and_the_defaults_pass(cls):
    missing = [fl for _, fl, f in numeric_fields(cls) if not f.metadata.get("bounds")]
    assert not missing, f"{cls.__name__}: give {missing} a range (ge=, gt=, le=, lt= in option())"
    build(cls).check()


@pytest.mark.parametrize("value", [-1, 0, float("nan"), float("inf")], ids=str)
def test_a_value_outside_the_range_is_a_clear_error_naming_the_option(value):
    for cls, path, fl, f in CASES:
        cfg = build(cls)
        set_field(cfg, path, value)
        if inside(f, value):
            try:
                cfg.check()
            except UserError as e:  # a cross-field rule may still object, but about this option
                assert fl in str(e) or "must" in str(e), (cls.__name__, fl, value, e)
            continue
        with pytest.raises(UserError) as e:
            cfg.check()
        assert fl in str(e.value), (cls.__name__, fl, value, str(e.value))


@pytest.mark.parametrize(
    "argv, named",
    [
        (
            ["rm", "--model", "m", "--data", "d.jsonl", "--out", "o", "--micro-batch", "0"],
            "--micro-batch must be >= 1",
        ),
        (
            ["rm", "--model", "m", "--data", "d.jsonl", "--out", "o", "--eval-fraction", "1"],
            "--eval-fraction must be in [0, 1)",
        ),
        (
            ["ppo", "--policy", "p", "--reward", "r", "--prompts", "x.jsonl", "--out", "o", "--lr", "-1"],
            "--lr must be > 0",
        ),
        (
            ["sft", "--model", "m", "--data", "d.jsonl", "--out", "o", "--lr", "nan"],
            "--lr must be a finite number",
        ),
        (
            [
                "loop",
                "--sft",
                "s",
                "--rm-prompts",
                "a",
                "--ppo-prompts",
                "b",
                "--eval-prompts",
                "c",
                "--out",
                "o",
                "--ppo-kl-coef",
                "-0.1",
            ],
            "--ppo-kl-coef must be >= 0",
        ),
        (["serve", "m", "--port", "70000"], "--port must be between 0 and 65535"),
    ],
)
def test_the_command_line_refuses_before_anything_loads(tmp_path, capsys, monkeypatch, argv, named):
    monkeypatch.chdir(tmp_path)  # nonexistent inputs: a check that ran after loading would fail on them
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err and not (tmp_path / "o").exists()


def command_argv(c) -> list[str]:
    """The command's words as main() passes them to the parser, with a placeholder for each required
    option."""
    words = c.name.split(" ")
    argv = [c.name] if len(words) == 2 and words[0] not in GROUPS else words  # `rm score`: one parser
    for f in dataclasses.fields(c.config):
        if f.metadata.get("positional"):
            argv.append("x")
        elif f.metadata.get("required"):
            argv += [flag(f.name), "x"]
    return argv


@pytest.mark.parametrize("value", ["0", "-1"])
def test_every_command_parser_refuses_its_numeric_options_out_of_range(value):
    from posttrain.arguments import from_namespace

    parser, tried = build_parser(), 0
    for c in COMMANDS:
        for _path, fl, f in numeric_fields(c.config):
            args = parser.parse_args([*command_argv(c), fl, value])
            cfg = from_namespace(c.config, args)
            tried += 1
            if inside(f, float(value)):
                continue
            with pytest.raises(UserError, match=fl):
                cfg.check()
    assert tried > 100


@pytest.mark.parametrize(
    "argv",
    [
        ["sample", "--model", "m", "--prompts", "p.jsonl", "--out", "o"],
        ["sft", "--model", "m", "--data", "d.jsonl", "--out", "o"],
        ["ppo", "--policy", "p", "--reward", "r", "--prompts", "x.jsonl", "--out", "o"],
        ["world", "export", "--out", "o"],
    ],
)
def test_seeds_that_differ_only_above_32_bits_are_refused(tmp_path, capsys, monkeypatch, argv):
    """Seeds are used as 32-bit values (the samplers, numpy); 2**32 + 7 would run as 7 does, or overflow
    torch's 64-bit seed once multiplied, so a seed past 2**32 - 1 is refused before anything runs."""
    monkeypatch.chdir(tmp_path)
    name = "--world-seed" if argv[0] == "ppo" else "--seed"
    assert main([*argv, name, str(2**32 + 7)]) == 2
    err = capsys.readouterr().err
    assert f"{name} must be between 0 and 4294967295, got 4294967303" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_every_seed_option_says_its_range_in_help():
    seeds = [(cls, fl, f) for cls, _, fl, f in CASES if fl == "--seed" or fl.endswith("-seed")]
    assert len(seeds) >= 10
    for cls, fl, f in seeds:
        from posttrain.arguments import range_text

        assert range_text(f) == "between 0 and 4294967295", (cls.__name__, fl)
