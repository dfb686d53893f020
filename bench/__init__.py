"""Benchmarks of kubernaut-storage.

`python -m bench` drives the service over HTTP under its production gunicorn configuration and
puts the figures beside the database's own ceiling, measured in the same run
(docs/PERFORMANCE.md). `python -m bench indexes` compares vector index strategies;
`python -m bench profile` profiles the write path in process. `embedding_cache_replay.py` is
the earlier in-process replay of the embedding cache (docs/EMBEDDINGS.md).
"""
