"""Ingest: read articles (loaders.py: files; fetch.py: web pages and PDFs by URL; feeds.py: RSS and
Atom), spot copies (near_dupes.py), and write them whole into the store (pipeline.py)."""
