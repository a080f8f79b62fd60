"""Pipelines compose the stages: `loop` (InstructGPT's iterated steps 2 and 3), `rejection` (best-of-K by
the reward model, then SFT on the picks) and `control_study` (SFT on the demonstrations the rankings'
labeler time would have bought, compared with RLHF). The demo, the whole recipe, is a command
(posttrain/commands/demo.py).

Stages never import each other or a pipeline; a pipeline builds each stage's config and calls it.
"""
