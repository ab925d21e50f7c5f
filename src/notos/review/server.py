"""The review web server: stdlib ThreadingHTTPServer on 127.0.0.1, one random token.

    server = start(session, port=0)          # serving in a thread
    server.url                               # http://127.0.0.1:PORT/?token=...
    server.stop()

Every request must carry the token (`?token=` or the X-Notos-Token header) or gets 403. The
access log goes to REVIEW/access.log with the path only: the query string, where the token
travels in the page's URL, is never written. API (JSON):

    GET  /api/meta                       aspects, sources, models, flags, sorts, counts, audit_pending
    GET  /api/records?sort=&desc=1&page=&size=&source=&model=&aspect=&low=&high=&flag=&na=1&edited=yes|no&q=
    GET  /api/record?id=PROMPT_ID
    POST /api/edit   {prompt_id, completion_index, field, new, note}  -> the record after it
    GET  /api/summary

On a first start the audit (and for UltraFeedback Parquet the texts) is still running while the
list is served: /api/meta and /api/records say `audit_pending` / `texts_pending` true, and a
request that needs them waits for them (503 with a message if it waited 10 minutes).
"""

from __future__ import annotations

import hmac
import json
import math
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from notos.errors import NotosError
from notos.review.page import page_html

MAX_BODY = 64 * 1024


@dataclass
class Running:
    httpd: ThreadingHTTPServer
    thread: threading.Thread
    token: str
    host: str

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/?token={self.token}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def start(session, host: str = "127.0.0.1", port: int = 0, token: str | None = None,
          log_path: Path | None = None) -> Running:
    """Serve `session` in a background thread; port 0 picks a free one."""
    token = token or secrets.token_urlsafe(24)
    handler = _handler(session, token, log_path)
    try:
        httpd = ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise NotosError(f"--port {port}: cannot listen on {host}:{port} ({exc.strerror or exc})") from None
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, name="notos-review", daemon=True)
    thread.start()
    return Running(httpd, thread, token, host)


def _handler(session, token: str, log_path: Path | None):
    log_lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        server_version = "notos-review"
        sys_version = ""

        def log_message(self, format, *args):
            pass  # the stdlib's line holds the full request line, token included: never written

        def _log(self, status: int) -> None:
            if log_path is None:
                return
            line = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {self.command} {urlsplit(self.path).path} {status}\n"
            with log_lock, open(log_path, "a", encoding="utf-8") as handle:
                handle.write(line)

        def _allowed(self, query: dict) -> bool:
            given = self.headers.get("X-Notos-Token") or (query.get("token") or [""])[0]
            return hmac.compare_digest(given.encode(), token.encode())

        def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("Referrer-Policy", "no-referrer")  # the token stays out of Referer headers
            self.end_headers()
            self.wfile.write(body)
            self._log(status)

        def _json(self, status: int, value) -> None:
            self._send(status, json.dumps(value, allow_nan=False, default=_plain).encode())

        def do_GET(self):
            self._dispatch("GET")

        def do_POST(self):
            self._dispatch("POST")

        def _dispatch(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            if not self._allowed(query):
                return self._send(403, b"forbidden: open the URL notos review printed (it holds the token)\n",
                                  "text/plain")
            try:
                if method == "GET" and parts.path == "/":
                    return self._send(200, page_html().encode(), "text/html")
                if method == "GET" and parts.path == "/api/meta":
                    return self._json(200, session.meta())
                if method == "GET" and parts.path == "/api/summary":
                    return self._json(200, session.summary())
                if method == "GET" and parts.path == "/api/records":
                    return self._json(200, session.page(**_list_options(query)))
                if method == "GET" and parts.path == "/api/record":
                    return self._json(200, session.record(_one(query, "id") or ""))
                if method == "POST" and parts.path == "/api/edit":
                    record = session.edit(self._body())
                    return self._json(200, {"record": record, "summary": session.summary()})
            except NotosError as exc:  # a user's error (400), or the audit still running (503: `Pending`)
                return self._json(getattr(exc, "status", 400), {"error": str(exc)})
            except (ValueError, TypeError) as exc:
                return self._json(400, {"error": f"bad request: {exc}"})
            self._json(404, {"error": f"no such page: {parts.path}"})

        def _body(self) -> dict:
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                raise ValueError("an edit is a JSON object of at most 64 KiB")
            value = json.loads(self.rfile.read(length))
            if not isinstance(value, dict):
                raise TypeError("an edit is a JSON object")
            return value

    return Handler


def _one(query: dict, name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _list_options(query: dict) -> dict:
    number = lambda name: float(_one(query, name)) if _one(query, name) not in (None, "") else None
    return {
        "sort": _one(query, "sort") or "position", "descending": _one(query, "desc") in ("1", "true"),
        "page": max(0, int(_one(query, "page") or 0)), "size": int(_one(query, "size") or 50),
        "source": _one(query, "source"), "model": _one(query, "model"), "aspect": _one(query, "aspect"),
        "low": number("low"), "high": number("high"), "flag": _one(query, "flag"),
        "na": _one(query, "na") in ("1", "true"), "edited": _one(query, "edited"), "q": _one(query, "q"),
    }


def _plain(value):
    """numpy scalars and NaN in API answers: plain numbers, NaN as null."""
    try:
        value = value.item()
    except AttributeError:
        return str(value)
    return None if isinstance(value, float) and math.isnan(value) else value
