"""perf/ metrics: N counted from a model's config, the peak measured once per process, the arithmetic."""

import pytest
import torch
from transformers import AutoModelForSequenceClassification, LlamaConfig, LlamaForCausalLM

from posttrain.training import perf

H, I, LAYERS, VOCAB = 32, 64, 2, 100


def llama(tied: bool) -> LlamaForCausalLM:
    return LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=H, intermediate_size=I, num_hidden_layers=LAYERS,
                                        num_attention_heads=2, num_key_value_heads=2, tie_word_embeddings=tied))


def blocks() -> int:
    """The decoder layers' matmul weights (q, k, v, o; gate, up, down), their two RMSNorms each, the final one."""
    return LAYERS * (4 * H * H + 3 * H * I + 2 * H) + H


def test_untied_llama_counts_the_lm_head_and_not_the_input_embedding():
    assert perf.matmul_parameters(llama(tied=False)) == blocks() + VOCAB * H


def test_tied_llama_counts_the_shared_embedding_once():
    model = llama(tied=True)
    assert model.get_input_embeddings().weight is model.get_output_embeddings().weight
    assert perf.matmul_parameters(model) == blocks() + VOCAB * H


def test_reward_model_counts_its_score_head_and_not_the_embedding(tmp_path):
    llama(tied=False).save_pretrained(tmp_path)
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=1)
    assert perf.matmul_parameters(model) == blocks() + H   # score: (1, H), no bias


@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")   # peft 0.21 on transformers 5
def test_lora_model_counts_the_frozen_base_and_the_adapters():
    from peft import LoraConfig, get_peft_model

    r = 4
    model = get_peft_model(llama(tied=False), LoraConfig(r=r, target_modules=["q_proj", "v_proj"]))
    adapters = LAYERS * 2 * (r * H + H * r)   # A (r, H) and B (H, r) on q_proj and v_proj
    assert perf.matmul_parameters(model) == blocks() + VOCAB * H + adapters


@pytest.fixture
def fresh_peaks(monkeypatch):
    monkeypatch.setattr(perf, "_PEAKS", {})


def test_peak_is_positive_and_measured_once_per_process(fresh_peaks, monkeypatch):
    calls = []
    real = torch.matmul
    monkeypatch.setattr(torch, "matmul", lambda a, b: calls.append(1) or real(a, b))
    first = perf.matmul_peak(seconds=0.01, n=64)
    assert first > 0 and len(calls) >= 5                   # a warm-up, then at least one group of four
    done = len(calls)
    assert perf.matmul_peak(seconds=0.01, n=64) == first and len(calls) == done


def test_each_clock_is_measured_on_its_own(fresh_peaks):
    assert perf.matmul_peak(seconds=0.01, n=64, clock="cpu") > 0
    assert len(perf._PEAKS) == 1
    perf.matmul_peak(seconds=0.01, n=64)
    assert len(perf._PEAKS) == 2


def test_cpu_clock_is_refused_off_the_cpu():
    with pytest.raises(ValueError, match="clock='wall'"):
        perf.matmul_peak(clock="cpu", device="meta")


def test_kaplan_approximations_and_the_metrics():
    assert perf.forward_flops(10, 3) == 60
    assert perf.training_flops(10, 3) == 180
    assert perf.perf_metrics(flops=6e9, seconds=2.0, peak=1e10) == {"perf/flops_per_s": 3e9,
                                                                  "perf/share_of_peak": 0.3}


def test_throughput_counts_a_step_against_every_rank_peak(monkeypatch):
    monkeypatch.setattr(perf, "_PEAKS", {("cpu", torch.get_num_threads(), 512, "wall"): 1e9})
    meter = perf.Throughput(llama(tied=False), world=2)
    n = blocks() + VOCAB * H
    assert meter.peak == 2e9
    assert meter.step(tokens=100, seconds=0.5) == {"perf/flops_per_s": 6 * n * 100 / 0.5,
                                                   "perf/share_of_peak": 6 * n * 100 / 0.5 / 2e9}
