"""lm-evaluation-harness against `posttrain serve`, offline: its `local-completions` model type scores a local
multiple-choice task (log-likelihoods from echo and logprobs, prompts sent as token ids) and runs a
generation task, and must get what its `hf` model type gets from the same checkpoint in-process: the same
log-likelihood for every choice, to rounding, so the same accuracy, and the same greedy text."""

import json

import pytest
from transformers import AutoTokenizer

from posttrain.serving.app import create_app
from posttrain.serving.engine import Engine
from posttrain.serving.feedback import FeedbackLog
from posttrain.serving.model import load_served
from posttrain.serving.server import BackgroundServer
from tests.tiny import BASE, tiny_checkpoint

TASKS = ["posttrain_mc", "posttrain_gen"]
COMMON = """dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
  cache_dir: {cache}
test_split: test
doc_to_text: "Q: {{{{question}}}}\\nA:"
"""
MULTIPLE_CHOICE = """task: posttrain_mc
output_type: multiple_choice
doc_to_choice: "{{{{choices}}}}"
doc_to_target: answer
metric_list:
  - metric: acc
"""
GENERATION = """task: posttrain_gen
output_type: generate_until
doc_to_target: "{{{{choices[0]}}}}"
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: 8
  do_sample: false
metric_list:
  - metric: exact_match
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A tiny random Llama checkpoint, and the two tasks over a few arithmetic questions."""
    d = tmp_path_factory.mktemp("lm-eval")
    tokenizer = AutoTokenizer.from_pretrained(BASE)
    tiny_checkpoint(d / "model", tokenizer)
    docs = [
        {"question": f"What is {a} + {b}?", "choices": [str(a + b), str(a + b + 1), "seven"], "answer": i % 3}
        for i, (a, b) in enumerate([(1, 2), (3, 4), (10, 5), (7, 7), (2, 9), (6, 1)])
    ]
    (d / "data.jsonl").write_text("\n".join(json.dumps(doc) for doc in docs))
    (d / "tasks").mkdir()
    common = COMMON.format(data=d / "data.jsonl", cache=d / "cache")
    for name, body in (("mc", MULTIPLE_CHOICE), ("gen", GENERATION)):
        (d / "tasks" / f"{name}.yaml").write_text(body.format() + common)
    return d


def evaluate(workdir, model: str, model_args: dict) -> dict:
    import lm_eval
    from lm_eval.tasks import TaskManager

    tasks = TaskManager(include_path=str(workdir / "tasks"))
    return lm_eval.simple_evaluate(
        model=model, model_args=model_args, tasks=TASKS, task_manager=tasks, log_samples=True, device="cpu"
    )


def test_local_completions_against_the_server_equals_the_hf_model_type(workdir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    served = load_served(str(workdir / "model"))
    engine = Engine(served).start()
    try:
        with BackgroundServer(create_app(served, engine, FeedbackLog(workdir / "feedback.jsonl"))) as srv:
            args = dict(
                model=served.name,
                base_url=srv.url + "/v1/completions",
                tokenizer_backend="huggingface",
                tokenizer=str(workdir / "model"),
                max_length=served.context_length,
            )
            api = evaluate(workdir, "local-completions", args)
    finally:
        engine.close()
    hf = evaluate(workdir, "hf", dict(pretrained=str(workdir / "model"), dtype="float32"))

    def scored(result: dict, task: str) -> list:
        return [sample["resps"] for sample in result["samples"][task]]

    for api_choices, hf_choices in zip(scored(api, "posttrain_mc"), scored(hf, "posttrain_mc"), strict=True):
        for [(api_ll, api_greedy)], [(hf_ll, hf_greedy)] in zip(api_choices, hf_choices, strict=True):
            assert abs(api_ll - hf_ll) < 1e-4 and api_greedy == hf_greedy
    assert api["results"]["posttrain_mc"]["acc,none"] == hf["results"]["posttrain_mc"]["acc,none"]
    assert scored(api, "posttrain_gen") == scored(hf, "posttrain_gen")
    assert len(api["samples"]["posttrain_gen"]) == 6
