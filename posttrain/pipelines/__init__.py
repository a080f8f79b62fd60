"""Pipelines compose the stages: `loop` (InstructGPT's iterated steps 2 and 3) and `demo` (the whole recipe).

Stages never import each other or a pipeline; a pipeline builds each stage's config and calls it.
"""
