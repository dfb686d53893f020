"""Integrity of the audit trail without Django or a database: the canonical row form, the
RFC 6962 Merkle tree, the Ed25519-signed seal format and the verification of exported archives.

Only the standard library and `cryptography`: the service's `audit_seal` / `audit_verify`
commands and a third party holding nothing but the public key run exactly this code
(`python -m kubernaut_integrity --help`). docs/INTEGRITY.md describes every format here.
"""
