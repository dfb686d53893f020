"""The evidence bundle: one JSON file that lets a third party check a correlation id's records
against the signed seals, the seal log's checkpoints, their time anchors and cosignatures,
holding nothing but the public keys (`evidence_verification.py` checks it).

    {"format": "kubernaut-audit-evidence/1",
     "correlation_id": "...", "from": null or a canonical timestamp, "to": ...,
     "generated_at": "<canonical timestamp>",
     "checkpoints": [{"note": "<signed note, cosignatures included>", "proof": [<base64 hash>, ...]}, ...],
     "anchors": [{"checkpoint": <tree size>, "token": "<base64 RFC 3161 TimeStampResp, DER>"}, ...],
     "seals": [{"body": "<the exact signed body>", "signature": "<base64>", "proof": [...]}, ...],
     "records": [{"index": <leaf index>, "proof": [...], "line": "<canonical line>"}, ...],
     "unsealed": [{"line": "<canonical line>"}, ...],
     "consistency": [{"from": <tree size>, "proof": [...]}, ...]}

- `checkpoints`: the latest checkpoint of the seal log when the bundle was made (its proof is
  empty), and earlier ones (the first to cover each seal, the first anchored one, the last one
  each witness cosigned), each with its RFC 6962 consistency proof to the latest;
- `anchors`: RFC 3161 answers over a checkpoint's note text (its body without signatures);
- `seals`: every seal a record is in, and the log's last seal (leaf size - 1 of the latest
  checkpoint, which tells where sealed history ends), each with its inclusion proof as leaf
  `sequence - 1` of the latest checkpoint;
- `records`: each record's canonical line (`canonical.py`) and the inclusion proof of its row
  hash as leaf `index` of its table's tree in the seal whose window holds its `recorded_at`;
- `unsealed`: the correlation id's records no checkpoint covers yet: listed, proving nothing;
- `consistency`: proofs from tree sizes an auditor asked for (checkpoints they kept) to the latest.

Nothing that a check relies on is a free member: tree sizes and roots come from the signed
notes and seal bodies, the seal of a record from its line's `recorded_at`, a seal's leaf index
from its signed `sequence`. The members that point somewhere (`index`, an anchor's
`checkpoint`, a consistency proof's `from`) change what is checked, never whether.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any

EVIDENCE_FORMAT = "kubernaut-audit-evidence/1"
#: A bundle holds a correlation id's records (each at most the 1 MiB a write may carry) and a
#: few kilobytes per seal and checkpoint: 64 MiB is far beyond any remediation's records, and
#: a verifier refuses a larger file unread.
BUNDLE_MAX_BYTES = 64 * 1024 * 1024


def hashes_json(hashes: Iterable[bytes]) -> list[str]:
    return [base64.b64encode(digest).decode() for digest in hashes]


def evidence_dumps(bundle: dict[str, Any]) -> bytes:
    """The bundle as written: UTF-8 JSON, one member per line, so a reader can find a record."""
    return (json.dumps(bundle, ensure_ascii=False, indent=1) + "\n").encode()
