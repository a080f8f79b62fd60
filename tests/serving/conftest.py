"""Fixtures the serving tests share: a tiny random Llama served over real HTTP on 127.0.0.1, fast enough
that a test can check the server's numbers against a direct forward of the same model."""

import pytest
import torch
from transformers import AutoTokenizer, LlamaForCausalLM

from posttrain.serving.app import create_app
from posttrain.serving.engine import Engine
from posttrain.serving.feedback import FeedbackLog
from posttrain.serving.model import ServedModel, context_length
from posttrain.serving.server import BackgroundServer
from tests.tiny import BASE, llama_config


@pytest.fixture(scope="module")
def tiny_served():
    """The tiny Llama (random weights, seed 0) with the shipped base model's tokenizer, named "tiny"."""
    tokenizer = AutoTokenizer.from_pretrained(BASE)
    torch.manual_seed(0)
    model = LlamaForCausalLM(llama_config(len(tokenizer))).eval()
    return ServedModel(model, tokenizer, "tiny", context_length(model, tokenizer))


@pytest.fixture(scope="module")
def tiny_server(tiny_served, tmp_path_factory):
    """`posttrain serve` of `tiny_served` on a thread, without an API key."""
    engine = Engine(tiny_served, max_batch=32).start()
    app = create_app(tiny_served, engine, FeedbackLog(tmp_path_factory.mktemp("serve") / "feedback.jsonl"))
    with BackgroundServer(app) as srv:
        yield srv
    engine.close()
