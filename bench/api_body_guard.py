"""Large and hostile bodies against a real ``benchfarm api`` process: when it answers (body bytes
the client had sent by then, seconds) and what its resident memory does meanwhile.

Run it once per checkout to compare (same machine, same run of the bench):

    python bench/api_body_guard.py --root /work/main --label before
    python bench/api_body_guard.py --label after

Cases: an unauthenticated 300 MB ``POST /runs`` (Content-Length, then chunked), an authorized
300 MB chunked body (the limit), and an authorized 3 MB body that fails validation (is it
echoed?). The server runs the code under ``--root`` against a fresh SQLite file and Redis DB 12
of ``$REDIS_URL``; results merge into bench/results/api_body_guard.json under the label.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from tests.api.rawhttp import api_process, push

OUT = Path(__file__).parent / "results" / "api_body_guard.json"
MB = 1024**2


def _token(env: dict[str, str]) -> str:
    code = "from orchestrator.api.auth import create_token; print(create_token('bench'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=str(Path(__file__).resolve().parents[1]), help="the checkout to serve")
    ap.add_argument("--label", required=True)
    args = ap.parse_args()
    base = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0").rsplit("/", 1)[0]
    redis_url = f"{base}/12"
    redis.Redis.from_url(redis_url).flushdb()
    tmp = Path(tempfile.mkdtemp(prefix="bf-bodyguard-"))
    env = {**os.environ, "PYTHONPATH": args.root, "REDIS_URL": redis_url, "BENCHFARM_DB": str(tmp / "bf.db"),
           "BENCHFARM_HOME": str(tmp / "home"), "BENCHFARM_ARTIFACTS": str(tmp / "artifacts")}
    env.pop("DATABASE_URL", None)
    auth = {"Authorization": f"Bearer {_token(env)}"}
    marker = "Z" * 1000
    invalid = json.dumps({"spec": marker * 3000, "trigger": "hourly"}).encode()
    cases: list[tuple[str, dict[str, Any]]] = [
        ("unauthenticated_300MB_content_length", {"total": 300 * MB}),
        ("unauthenticated_300MB_chunked", {"total": 300 * MB, "chunked": True}),
        ("authorized_300MB_chunked", {"total": 300 * MB, "chunked": True, "headers": auth}),
        ("authorized_3MB_invalid", {"total": len(invalid), "payload": invalid, "headers": auth}),
    ]
    results: dict[str, Any] = {}
    with api_process(env, tmp / "api.log") as (port, proc):
        for name, kw in cases:
            rss_before = proc.memory_info().rss
            t0 = time.monotonic()
            got = push(port, "/runs", server=proc, **kw)
            results[name] = {"status": got.status, "seconds": round(time.monotonic() - t0, 3),
                             "body_bytes_sent": got.sent, "reply_bytes": len(got.body),
                             "reply_echoes_input": marker.encode()[:200] in got.body,
                             "server_rss_before_MB": round(rss_before / MB, 1),
                             "server_rss_peak_MB": round(got.peak_rss / MB, 1)}
            print(name, results[name], flush=True)
    doc = json.loads(OUT.read_text()) if OUT.exists() else {}
    doc[args.label] = {"root": args.root, "load_avg": list(os.getloadavg()), "cases": results}
    OUT.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
