"""A tiny local stand-in for the GitHub issue-comments REST API that records every request.

Only the three calls the PR commenter makes exist; anything else is a 404, so a wrong
path fails the test instead of passing silently.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_LIST = re.compile(r"^/repos/([^/]+/[^/]+)/issues/(\d+)/comments(?:\?.*)?$")
_ONE = re.compile(r"^/repos/([^/]+/[^/]+)/issues/comments/(\d+)$")


class FakeGitHub:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.comments: dict[int, dict[str, Any]] = {}
        self._next = 1000
        gh = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: Any) -> None:  # keep test output clean
                pass

            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _record(self) -> dict[str, Any]:
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n)) if n else None
                rec = {"method": self.command, "path": self.path, "headers": dict(self.headers), "json": body}
                gh.requests.append(rec)
                return rec

            def do_GET(self) -> None:  # noqa: N802
                self._record()
                m = _LIST.match(self.path)
                if not m:
                    return self._reply(404, {"message": "Not Found"})
                page_arg = re.search(r"[?&]page=(\d+)", self.path)
                page = int(page_arg[1]) if page_arg else 1
                items = [c for c in gh.comments.values() if c["issue"] == (m[1], int(m[2]))]
                self._reply(200, items[(page - 1) * 100:page * 100])

            def do_POST(self) -> None:  # noqa: N802
                rec = self._record()
                m = _LIST.match(self.path)
                if not m:
                    return self._reply(404, {"message": "Not Found"})
                gh._next += 1
                c = {"id": gh._next, "issue": (m[1], int(m[2])), "body": rec["json"]["body"],
                     "html_url": f"https://github.example/{m[1]}/pull/{m[2]}#issuecomment-{gh._next}"}
                gh.comments[c["id"]] = c
                self._reply(201, c)

            def do_PATCH(self) -> None:  # noqa: N802
                rec = self._record()
                m = _ONE.match(self.path)
                if not m or int(m[2]) not in gh.comments:
                    return self._reply(404, {"message": "Not Found"})
                gh.comments[int(m[2])]["body"] = rec["json"]["body"]
                self._reply(200, gh.comments[int(m[2])])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeGitHub:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
