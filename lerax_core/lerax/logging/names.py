"""Metric names that are not a single run's own: old names, and the aggregate's."""

DEPRECATED_METRICS = {
    "episode/return_mean": "episode/return",
    "episode/length_mean": "episode/length",
}
"""Old metric names still sent for one release, each with the value of the name it
maps to; the next release removes them (see the Logging page's renamed metrics).
Runs of many members, which are new, do not get them."""

SUMMARY_SUFFIXES = ("", "_std", "_min", "_max")
"""How an aggregate row names a metric's mean, standard deviation, minimum and
maximum across members (`episode/return`, `episode/return_std`, ...)."""

SPREAD_PREFIXES = ("episode/", "eval/")
"""Metrics whose spread across members (`_std`, `_min`, `_max`) the aggregate
row carries; the others (losses, timings) carry their mean only, which keeps
rows small for backends that pay per value (W&B)."""
