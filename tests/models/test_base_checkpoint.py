"""The checked-in base model: made from today's world, small, and it knows the world's facts."""

import json

import pytest

from posttrain.data.corpus import file_sha256
from posttrain.evaluation.probes import knowledge_completion
from posttrain.models.load import load_causal_lm
from posttrain.world import World
from posttrain.world.export import export
from tests.tiny import BASE


def test_it_was_trained_on_the_corpus_the_world_exports_today(tmp_path):
    export(World(seed=0, scale="small"), tmp_path / "w")
    manifest = json.loads((BASE / "posttrain.json").read_text())
    assert manifest["data"]["corpus_sha256"] == file_sha256(tmp_path / "w" / "corpus.jsonl"), (
        "the world's corpus changed: re-make assets/base-small-seed0 with the commands in its README"
    )


def test_it_fits_the_size_budget():
    assert sum(p.stat().st_size for p in BASE.iterdir()) <= 20 * 2**20


@pytest.fixture(scope="module")
def base():
    return load_causal_lm(BASE)


def test_it_knows_the_facts_well_above_chance(base):
    model, tokenizer = base
    result = knowledge_completion(model, tokenizer, World(seed=0, scale="small").kb)
    assert result["accuracy"] > 0.8 > 10 * result["chance"]


def test_loading_a_directory_without_a_model_is_a_clear_error(tmp_path):
    from posttrain.errors import UserError

    with pytest.raises(UserError, match="no config.json"):
        load_causal_lm(tmp_path)
