"""Run both protocol test servers for manual trials: ``python -m tests.helpers.devservers``.

Prints the URLs and the environment to point the app at them, then serves until Ctrl+C
(or ``--seconds N``). Never used by the test suite itself.
"""

from __future__ import annotations

import argparse
import contextlib
import time

from tests.servers.halext_server import HalextServer
from tests.servers.ollama_server import OllamaServer


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3600.0)
    ap.add_argument("--token-delay", type=float, default=0.0)
    args = ap.parse_args()
    with HalextServer() as halext, OllamaServer() as ollama:
        halext.set_chunk_delay(args.token_delay)
        ollama.set_token_delay(args.token_delay)
        print(f"export HALEXT_URL={halext.url} OLLAMA_HOST={ollama.url}", flush=True)
        print("halext user: dev / dev123", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            time.sleep(args.seconds)


if __name__ == "__main__":
    main()
