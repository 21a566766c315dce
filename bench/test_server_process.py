"""The project's Ollama test server (``tests/servers/ollama_server.py``) in its own process,
for benchmarks that compare it with ``bench/fast_ollama.py``: prints its port, serves until
terminated.

Its replies echo the prompt (``reply_text``): a prompt of ``n - 2`` words streams ``n``
chunks.
"""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.servers.ollama_server import OllamaServer  # noqa: E402

MODELS = ["fast-1:latest", "fast-20:latest", "fast-200:latest", "fast-2000:latest"]


def main() -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_a: stop.set())
    with OllamaServer(models=MODELS) as server:
        print(server.url.rsplit(":", 1)[1], flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
