"""The cost stage: exact FLOPs (analytic MAC counts) and measured latency."""

from reswise_tf.cost.flops import count_flops, count_macs, count_macs_by_layer
from reswise_tf.cost.latency import latency_columns, median_latency

__all__ = ["count_flops", "count_macs", "count_macs_by_layer", "latency_columns", "median_latency"]
