"""perf/ metrics: N counted from a model's config, the peak measured once per process, the arithmetic."""

import pytest
import torch
from transformers import AutoModelForSequenceClassification, LlamaConfig, LlamaForCausalLM

from posttrain.training import perf

H, FFN, LAYERS, VOCAB = 32, 64, 2, 100


def llama(tied: bool) -> LlamaForCausalLM:
    return LlamaForCausalLM(
        LlamaConfig(
            vocab_size=VOCAB,
            hidden_size=H,
            intermediate_size=FFN,
            num_hidden_layers=LAYERS,
            num_attention_heads=2,
            num_key_value_heads=2,
            tie_word_embeddings=tied,
        )
    )


def blocks() -> int:
    """The decoder layers' matmul weights (q, k, v, o; gate, up, down), their two RMSNorms each, the final
    one."""
    return LAYERS * (4 * H * H + 3 * H * FFN + 2 * H) + H


def test_untied_llama_counts_the_lm_head_and_not_the_input_embedding():
    assert perf.matmul_parameters(llama(tied=False)) == blocks() + VOCAB * H


def test_tied_llama_counts_the_shared_embedding_once():
    model = llama(tied=True)
    assert model.get_input_embeddings().weight is model.get_output_embeddings().weight
    assert perf.matmul_parameters(model) == blocks() + VOCAB * H


def test_reward_model_counts_its_score_head_and_not_the_embedding(tmp_path):
    llama(tied=False).save_pretrained(tmp_path)
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path, num_labels=1)
    assert perf.matmul_parameters(model) == blocks() + H  # score: (1, H), no bias


@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")  # peft 0.21 on transformers 5
def test_lora_model_counts_the_frozen_base_and_the_adapters():
    from peft import LoraConfig, get_peft_model

    r = 4
    model = get_peft_model(llama(tied=False), LoraConfig(r=r, target_modules=["q_proj", "v_proj"]))
    adapters = LAYERS * 2 * (r * H + H * r)  # A (r, H) and B (H, r) on q_proj and v_proj
    assert perf.matmul_parameters(model) == blocks() + VOCAB * H + adapters


@pytest.fixture
def fresh_peaks(monkeypatch):
    monkeypatch.setattr(perf, "_PEAKS", {})


def test_peak_is_positive_and_measured_once_per_process(fresh_peaks, monkeypatch):
    calls = []
    real = torch.matmul
    monkeypatch.setattr(torch, "matmul", lambda a, b: calls.append(1) or real(a, b))
    first = perf.matmul_peak(seconds=0.01, n=64)
    assert first > 0 and len(calls) >= 5  # a warm-up, then at least one group of four
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
    assert perf.perf_metrics(flops=6e9, seconds=2.0, peak=1e10) == {
        "perf/flops_per_s": 3e9,
        "perf/share_of_peak": 0.3,
    }


def test_throughput_counts_a_step_against_every_rank_peak(monkeypatch):
    monkeypatch.setattr(
        perf, "_PEAKS", {("cpu", 1, 512, "cpu"): 1e9 / torch.get_num_threads()}
    )  # one thread's
    meter = perf.Throughput(llama(tied=False), world=2)
    n = blocks() + VOCAB * H
    assert meter.peak == pytest.approx(2e9)
    assert meter.step(tokens=100, seconds=0.5) == pytest.approx(
        {"perf/flops_per_s": 6 * n * 100 / 0.5, "perf/share_of_peak": 6 * n * 100 / 0.5 / 2e9}
    )


def test_the_cpu_peak_is_one_threads_rate_per_cpu_second_times_the_threads(fresh_peaks, monkeypatch):
    seen = []
    monkeypatch.setattr(
        perf,
        "_measure",
        lambda seconds, n, clock, device: seen.append((torch.get_num_threads(), clock)) or 1e9,
    )
    threads = torch.get_num_threads()
    assert perf.stage_peak() == 1e9 * threads
    assert (
        seen == [(1, "cpu")] and torch.get_num_threads() == threads
    )  # the stage's threads are left as they were


def test_a_ppo_ptx_steps_flop_count_is_what_its_matmuls_do(stage_inputs, tmp_path, monkeypatch):
    """The PPO FLOP count (`step_flops`: rollout forwards, reference, value and reward forwards, every epoch's
    policy and value training, the PPO-ptx rows) against torch's own count of one step's matmuls: the count
    leaves attention out, so it may fall short, never above (a share of peak above 100% is not the count's).
    """
    from torch.utils.flop_counter import FlopCounterMode

    import posttrain.stages.ppo as stage
    import posttrain.training.rl_stage as rl_stage
    from posttrain.cli import main

    counted, measured = [], []

    def counting(f):
        def run(*a, **k):
            with FlopCounterMode(display=False) as c:
                out = f(*a, **k)
            measured.append(c.get_total_flops())
            return out

        return run

    monkeypatch.setattr(stage, "rollout", counting(stage.rollout))
    monkeypatch.setattr(stage, "ppo_epochs", counting(stage.ppo_epochs))
    real = rl_stage.step_flops
    monkeypatch.setattr(rl_stage, "step_flops", lambda *a: counted.append(real(*a)) or counted[-1])
    d = stage_inputs
    assert (
        main(
            [
                "ppo",
                "--policy",
                str(d / "model"),
                "--reward",
                str(d / "rm"),
                "--prompts",
                str(d / "prompts.jsonl"),
                "--out",
                str(tmp_path / "ppo"),
                "--max-steps",
                "1",
                "--rollout-batch",
                "8",
                "--minibatches",
                "2",
                "--micro-batch",
                "2",
                "--max-new-tokens",
                "8",
                "--ptx",
                str(d / "corpus.jsonl"),
                "--ptx-batch",
                "2",
                "--ptx-seq-len",
                "16",
            ]
        )
        == 0
    )
    assert len(counted) == 1 and 0.75 * sum(measured) <= counted[0] <= sum(measured), (counted, measured)
