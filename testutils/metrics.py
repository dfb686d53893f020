"""Read Prometheus samples from the process's default registry, as /metrics would show them."""

from __future__ import annotations

from prometheus_client import REGISTRY


def sample(name: str, **labels: str) -> float:
    """The sample's current value; 0 for a labelled child not created yet."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


class MetricDelta:
    """Samples taken now, to compare with later: `delta.of(name, **labels)` is the increase."""

    def __init__(self, *names: tuple[str, dict[str, str]]) -> None:
        self._before = {(name, tuple(sorted(labels.items()))): sample(name, **labels) for name, labels in names}

    def of(self, name: str, **labels: str) -> float:
        return sample(name, **labels) - self._before[(name, tuple(sorted(labels.items())))]
