"""SageMaker's MetricDefinitions for the `hpl-metrics` line, so the same figures reach
CloudWatch (SageMaker takes each metric's first regex group from the job's output)."""

from __future__ import annotations

from hyperpod_launcher.telemetry.node_watch import PREFIX

_NUMBER = r"(-?[0-9.]+(?:[eE][-+]?[0-9]+)?)"
FIELDS = {  # metric name -> the contract field
    "hpl:step": "step",
    "hpl:loss": "loss",
    "hpl:learning_rate": "lr",
    "hpl:tokens": "tokens",
    "hpl:step_time_s": "step_time_s",
    "hpl:memory_gib": "memory_gib",
}


def metric_definitions() -> list[dict[str, str]]:
    return [
        {"Name": name, "Regex": f'{PREFIX}.*"{field}":{_NUMBER}'} for name, field in FIELDS.items()
    ]
