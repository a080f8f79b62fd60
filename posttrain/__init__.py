"""posttrain: turn a pretrained language model into an aligned chat assistant (SFT -> RM -> PPO)."""

__version__ = "0.1.0"
