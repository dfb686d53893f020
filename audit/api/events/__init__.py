"""Upstream Kubernaut's unified audit events: the request contract (docs/UPSTREAM.md).

Validation only: what upstream's API document allows is accepted, no more strictly, and what
PostgreSQL can store is the only further bound.
"""
