"""Search: the BM25 index (bm25.py), hybrid retrieval with reciprocal-rank fusion (retrieval.py),
context selection at sentence grain (context.py), and their options (options.py)."""
