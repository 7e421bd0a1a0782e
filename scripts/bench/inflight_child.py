"""Client peak RSS and thread count with many calls in flight, in a process of its own.

Usage: ``python inflight_child.py BASE_URL CALLS``. Starts ``CALLS`` ``get_training_run`` calls
at once through a default ``RestClient`` (against the canned server with ``--delay``), counts
the process's threads while they are in flight, waits for them all, and prints one JSON line:
``threads_in_flight``, ``threads_before``, ``maxrss_mib``, ``idle_rss_mib`` and ``seconds``.
"""

from __future__ import annotations

import json
import sys
import threading
import time

from download_child import peak_mib  # this process's own peak (ru_maxrss is the parent's)

from tinker_rest import RestClient


def main() -> None:
    base_url, calls = sys.argv[1], int(sys.argv[2])
    idle = peak_mib()
    before = threading.active_count()
    # As many connections as calls: over HTTP/1.1 each call in flight needs one.
    with RestClient(base_url, "bench-key", max_retries=0, max_connections=calls) as client:
        started = time.perf_counter()
        futures = [client.get_training_run("sess-bench:train:0") for _ in range(calls)]
        threads = threading.active_count()
        for future in futures:
            future.result()
        seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "threads_before": before,
                "threads_in_flight": threads,
                "idle_rss_mib": idle,
                "maxrss_mib": peak_mib(),
                "seconds": seconds,
            }
        )
    )


if __name__ == "__main__":
    main()
