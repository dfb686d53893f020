"""Integrity of the audit trail without Django or a database: the canonical row form, the
RFC 6962 Merkle tree, the Ed25519-signed seal format, the retention archive format, the
transparency log of seals with its checkpoints, cosignatures and time anchors, and the
verification of an exported period.

Only the standard library, `cryptography` and `rfc3161-client` (a test imports every module in
a fresh interpreter to keep it so): the service's `audit_seal` / `audit_verify` /
`audit_retention` commands and a third party holding nothing but the public keys run exactly
this code (`python -m kubernaut_integrity --help`). docs/INTEGRITY.md describes every format.
Every file it reads may come from someone else: read with a bound, and a finding when it is
not what it should be.

Modules, each using only those listed before it:

- `canonical.py`: the canonical form of a stored row, and its hash;
- `merkle.py`: the RFC 6962 Merkle Tree Hash of a window's rows;
- `tlog.py`: the growing log of seals: tree heads, inclusion and consistency proofs;
- `note.py`, `cosignature.py`, `checkpoint.py`: signed notes, witness cosignatures, and the
  log's checkpoints as notes;
- `witness.py`, `timestamps.py`: asking a witness to cosign, and an RFC 3161 authority to
  timestamp, a checkpoint;
- `files.py`: files written whole or not at all, and read only within a bound;
- `keys.py`: Ed25519 seal keys and their ids;
- `seals.py`: the signed seal body, and the leaves it is built from;
- `findings.py`: what verification reports, and the checks both verifiers share;
- `seal_files.py`: a seal's copy outside the database, with its leaves;
- `archive.py`: the retention archive of a partition and its manifest, written and read;
- `archive_verification.py`: an exported period checked against its seals;
- `evidence.py`, `evidence_verification.py`: the evidence bundle of a correlation id, and its
  check with nothing but the auditor's keys;
- `arguments.py`, `__main__.py`: the command line.
"""
