"""Watching a run: the `hpl-metrics` line contract, what the per-node script runs beside the
job (stack log parsers, hang watchdog, EFA tripwire) and the figures derived from the lines."""
