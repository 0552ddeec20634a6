"""Evaluation: gold sets in their public formats (adapters.py) as items (gold.py), each corpus in an
isolated collection (corpora.py), the pipeline's response to an item (respond.py), its scores
(scoring.py, metrics.py) and rows (evaluate.py), run folders and comparisons (runs.py, report.py),
and the model-call cache (cache.py)."""
