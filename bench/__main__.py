"""`python -m bench [run|indexes|profile|prometheus-cost] [options]`: set up what the benchmark needs, then run it.

Runs with any Python 3.11 from a fresh clone: it first runs `scripts/setup dev` (the virtualenv
and the pinned packages), installs the Debian packages `wrk` and `redis-server` when they are
missing, and then runs itself again inside `.venv`. Only the standard library is used before that.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Debian package → the command it provides.
DEBIAN_PACKAGES = {"wrk": "wrk", "redis-server": "redis-server"}
_BOOTSTRAPPED = "KUBERNAUT_BENCH_BOOTSTRAPPED"


def _debian_packages_ensure() -> None:
    missing = [package for package, command in DEBIAN_PACKAGES.items() if shutil.which(command) is None]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        sys.exit(f"bench: please install {' '.join(missing)} (Debian: apt-get install -y {' '.join(missing)})")
    print(f"==> installing {' '.join(missing)}", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env, stdout=subprocess.DEVNULL)


def _bootstrap() -> None:
    """Prepare the machine once, then continue in .venv's Python."""
    subprocess.run([str(ROOT / "scripts" / "setup"), "dev"], check=True)
    _debian_packages_ensure()
    python = ROOT / ".venv" / "bin" / "python"
    env = {**os.environ, _BOOTSTRAPPED: "1"}
    os.chdir(ROOT)
    os.execve(python, [str(python), "-m", "bench", *sys.argv[1:]], env)


def main() -> None:
    if os.environ.get(_BOOTSTRAPPED) != "1":
        _bootstrap()
    from bench.cli import main as cli_main

    cli_main(sys.argv[1:])


if __name__ == "__main__":
    main()
