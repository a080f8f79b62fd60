"""Training machinery the stages share: the metrics log, the LR schedule, the LM loss and its batches,
one optimizer step, the perf/ metrics (FLOP/s against the matmul peak), and PPO's rollout phase (which
critic-free methods would share too).

Stages import it; it never imports a stage, a pipeline or the command line
(tests/project/test_import_rules.py).
"""
