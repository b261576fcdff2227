"""Training-dynamics checks (gradients, activations, lr, loss curve, init, ...)."""

from __future__ import annotations

__all__: list[str] = []
