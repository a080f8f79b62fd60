"""KL coefficient controllers (Ziegler et al. 2019, section 2.2)."""

from __future__ import annotations


class FixedKLController:
    """beta stays where it was set."""

    def __init__(self, value: float):
        self.value = value

    def update(self, current_kl: float, n_steps: int) -> float:
        return self.value


class AdaptiveKLController:
    """beta follows a target KL: e = clip(KL / target - 1, -0.2, 0.2); beta *= 1 + e * n / horizon."""

    def __init__(self, value: float, target: float, horizon: int):
        if target <= 0 or horizon <= 0:
            raise ValueError("the adaptive KL controller needs target > 0 and horizon > 0")
        self.value, self.target, self.horizon = value, target, horizon

    def update(self, current_kl: float, n_steps: int) -> float:
        error = min(max(current_kl / self.target - 1, -0.2), 0.2)
        self.value *= 1 + error * n_steps / self.horizon
        return self.value
