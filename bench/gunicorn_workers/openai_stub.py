"""An OpenAI-compatible embeddings server that answers after a fixed delay: the I/O-bound
embedding call of the gunicorn worker benchmark (run.sh). Prints its base URL, then serves.

    .venv/bin/python bench/gunicorn_workers/openai_stub.py --delay-ms 100
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from testutils.openai_server import OpenAICompatibleServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay-ms", type=float, default=100.0)
    args = parser.parse_args()
    server = OpenAICompatibleServer(mode="slow", delay_s=args.delay_ms / 1000, max_recorded=1).start()
    print(server.base_url, flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
