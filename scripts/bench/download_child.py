"""One timed archive download in a fresh process, so its peak RSS is its own.

Usage: ``download_child.py MODE BASE_URL API_KEY TINKER_PATH DEST_DIR``; prints one JSON line
with ``seconds``, ``bytes``, ``maxrss_mib`` (the whole process's peak RSS) and ``idle_rss_mib`` (the
peak after imports, before the download). MODE is ``raw`` (httpx streams the signed URL to a
file), ``ours`` (``RestClient.download_checkpoint(..., extract=False)``) or ``ours-extract``
(the same with ``extract=True``).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import httpx

from tinker_rest import RestClient, TinkerPath


def peak_mib() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux carries ru_maxrss across execve,
    so a child of a big parent would report the parent's peak."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def raw(base_url: str, api_key: str, tinker_path: str, dest: Path) -> int:
    path = TinkerPath.parse(tinker_path)
    route = (
        f"/api/v1/training_runs/{path.training_run_id}/checkpoints/{path.kind}/{path.name}/archive"
    )
    with httpx.Client(base_url=base_url, headers={"X-API-Key": api_key}, timeout=120) as client:
        while True:
            response = client.get(route)
            if response.status_code != 503:
                break
            time.sleep(1)
        url = response.raise_for_status().json()["url"]
        written = 0
        with client.stream("GET", url) as stream, open(dest / "archive.tar", "wb") as out:
            stream.raise_for_status()
            for chunk in stream.iter_bytes():
                out.write(chunk)
                written += len(chunk)
        return written


def ours(base_url: str, api_key: str, tinker_path: str, dest: Path, extract: bool) -> int:
    with RestClient(base_url, api_key, timeout=120) as client:
        if hasattr(client, "download_checkpoint"):
            where = Path(client.download_checkpoint(tinker_path, dest, extract=extract))
            files = [where] if where.is_file() else [p for p in where.rglob("*") if p.is_file()]
            return sum(p.stat().st_size for p in files)
        # Before download_checkpoint existed: the facade's URL, streamed by hand.
        url = client.get_checkpoint_archive_url_from_tinker_path(tinker_path).result().url
        written = 0
        with httpx.stream("GET", url, timeout=120) as stream, open(dest / "a.tar", "wb") as out:
            for chunk in stream.iter_bytes():
                out.write(chunk)
                written += len(chunk)
        return written


def main() -> None:
    mode, base_url, api_key, tinker_path, dest = sys.argv[1:6]
    idle = peak_mib()
    began = time.perf_counter()
    if mode == "raw":
        written = raw(base_url, api_key, tinker_path, Path(dest))
    else:
        written = ours(base_url, api_key, tinker_path, Path(dest), extract=mode == "ours-extract")
    seconds = time.perf_counter() - began
    result = {"seconds": seconds, "bytes": written, "maxrss_mib": peak_mib(), "idle_rss_mib": idle}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
