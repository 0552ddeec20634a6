"""qa: cited answers from your news articles, offline."""

__version__ = "0.1.0"
