"""The Go cross-check (tests/kubernaut_integrity/go_crosscheck/main.go): Go's reference code
(golang.org/x/mod/sumdb/note and .../tlog, Debian's golang-go and golang-golang-x-mod-dev)
checks our checkpoints, cosignatures, inclusion and consistency proofs.

The program is built offline against Debian's copy of the module, once per version of its
source, under .data/go/."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parents[1]
SOURCE = REPOSITORY / "tests" / "kubernaut_integrity" / "go_crosscheck" / "main.go"
GOPATH = Path("/usr/share/gocode")


class GoMissingError(RuntimeError):
    pass


def crosscheck_build() -> Path:
    """The built program; raises GoMissingError without Go and Debian's x/mod."""
    go = shutil.which("go")
    if go is None or not (GOPATH / "src/golang.org/x/mod/sumdb/tlog").is_dir():
        raise GoMissingError(
            "Go's reference code is missing: apt-get install golang-go golang-golang-x-mod-dev (scripts/test does)"
        )
    build_dir = REPOSITORY / ".data" / "go"
    binary = build_dir / f"crosscheck-{hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]}"
    if not binary.exists():
        build_dir.mkdir(parents=True, exist_ok=True)
        partial = binary.with_name(f"{binary.name}.{os.getpid()}")
        env = {
            **os.environ,
            "GO111MODULE": "off",
            "GOPATH": str(GOPATH),
            "GOCACHE": str(build_dir / "cache"),
            "GOPROXY": "off",
            "GOFLAGS": "",
            "GOTOOLCHAIN": "local",
        }
        done = subprocess.run(
            [go, "build", "-o", str(partial), str(SOURCE)], env=env, capture_output=True, text=True, timeout=600
        )
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        partial.replace(binary)
    return binary


def crosscheck_run(binary: Path, document: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """(exit status, verdicts) of the program on one input document."""
    done = subprocess.run(binary, input=json.dumps(document), capture_output=True, text=True, timeout=120)
    if not done.stdout:
        raise RuntimeError(done.stderr)
    verdicts: dict[str, Any] = json.loads(done.stdout)
    return done.returncode, verdicts


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
