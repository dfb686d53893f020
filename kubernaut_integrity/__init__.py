"""Integrity of the audit trail without Django or a database: the canonical row form, the
RFC 6962 Merkle tree, the Ed25519-signed seal format, the retention archive format and the
verification of an exported period.

Only the standard library and `cryptography` (a test imports it in a fresh interpreter to keep
it so): the service's `audit_seal` / `audit_verify` / `audit_retention` commands and a third
party holding nothing but the public key run exactly this code (`python -m kubernaut_integrity
--help`). docs/INTEGRITY.md describes every format here.

Modules, each using only those listed before it:

- `canonical.py`: the canonical form of a stored row, and its hash;
- `merkle.py`: the RFC 6962 Merkle Tree Hash;
- `files.py`: files written whole or not at all;
- `keys.py`: Ed25519 keys and their ids;
- `seals.py`: the signed seal body, and the leaves it is built from;
- `findings.py`: what verification reports, and the checks both verifiers share;
- `seal_files.py`: a seal's copy outside the database, with its leaves;
- `archive.py`: the retention archive of a partition and its manifest, written and read;
- `archive_verification.py`: an exported period checked against its seals;
- `arguments.py`, `__main__.py`: the command line.
"""
