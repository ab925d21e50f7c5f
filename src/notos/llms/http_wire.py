"""HTTP/1.1 over asyncio for the OpenAI-compatible client (http_client.py): what it uses, no more.

Why not aiohttp's ClientSession: per request it builds a URL object, merges header multidicts,
wraps the body in a payload object, runs cookie, redirect and tracing hooks and a stream reader,
on the one event loop that also runs the pipeline. The whole OpenAI-compatible client, from a
conversation to its `Generation`, costs ~95 us of CPU a request on this one against ~150 on
aiohttp (20,000 requests to the loopback fake server, 64 at a time); the UltraFeedback job's
event loop, 150 against 280 (bench/ultrafeedback_full.py). What this does:

- keep-alive connections to one server (http:// or https://), one request at a time on each;
  the most recently used idle one is reused, one idle for IDLE_SECONDS is closed instead;
- a request written as one bytes object (the head of each method and path built once);
- a response read by Content-Length, chunked coding, or to the end of the connection; a
  compressed body (a server that compresses although asked not to) decoded (gzip, deflate);
- a request whose reused connection turns out closed before any byte of the reply (the server
  dropped an idle connection just then) is sent once more on a new connection.

No proxies, cookies or redirects: the client never used them. The caller bounds the
concurrency; `timeout` bounds each request as a whole (connecting, sending, the reply), with
one timer on the connection rather than a cancel scope. A request cancelled or timed out closes
its connection (its reply is unread).
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from urllib.parse import urlparse

from notos.version import __version__

IDLE_SECONDS = 15.0  # aiohttp's keep-alive time for idle client connections
MAX_HEAD = 64 * 1024  # a status line and headers longer than this are not a reply we can read
MAX_BODY = 256 * 1024 * 1024  # a reply larger than this is a hostile or broken server, not an answer
MAX_CHUNK_LINE = 1024  # a chunk's size line (hex digits and extensions) longer than this is not HTTP
READ_BUFFER = 64 * 1024  # one per pool: a connection's reply is copied out as soon as it arrives


class WireError(Exception):
    """The connection broke, or the server's reply is not HTTP this client can read."""


class Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status, self.headers, self.body = status, headers, body  # header names in lower case


class Pool:
    """Keep-alive connections to the server of `base_url` (its path is put before each path)."""

    def __init__(self, base_url: str, headers: dict[str, str] | None = None):
        parsed = urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host, self.port = parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80)
        self.prefix = parsed.path.rstrip("/")
        self.ssl = ssl.create_default_context() if parsed.scheme == "https" else None
        netloc = parsed.netloc.rpartition("@")[2]  # never the userinfo
        # The caller's headers first after Host, as aiohttp sent them (a server echoing the
        # request in a short error message shows them, redacted: test_reliability_llm).
        fixed = {"Host": netloc, **(headers or {}), "Accept": "application/json", "Accept-Encoding": "identity",
                 "User-Agent": f"notos/{__version__}"}
        self._fixed = "".join(f"{k}: {v}\r\n" for k, v in fixed.items()).encode("latin-1")
        self._heads: dict[tuple[str, str], bytes] = {}
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()
        self.read_view = memoryview(bytearray(READ_BUFFER))
        self.connections_made = 0  # for tests and benches: how often a connection was opened

    async def request(self, method: str, path: str, body: bytes = b"", timeout: float | None = None) -> Response:
        """One request, its whole reply. Raises TimeoutError after `timeout` seconds in all,
        WireError or OSError (refused, reset, TLS...)."""
        data = self._head(method, path) + (b"Content-Length: %d\r\n\r\n" % len(body) + body if body or method == "POST"
                                           else b"\r\n")
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            conn, reused = self._take_idle(), True
            if conn is None:
                async with asyncio.timeout_at(deadline):
                    conn, reused = await self._connect(), False
            try:
                response = await conn.exchange(data, deadline)
            except WireError:
                conn.abort()
                if reused and not conn.replied and (deadline is None or loop.time() < deadline):
                    continue  # a stale keep-alive connection: the server never saw this request
                raise
            except BaseException:  # cancelled (a timeout): the reply is unread, the connection unusable
                conn.abort()
                raise
            if conn.reusable():
                conn.idle_since = time.monotonic()
                self._idle.append(conn)
            else:
                conn.abort()
            return response

    def _head(self, method: str, path: str) -> bytes:
        head = self._heads.get((method, path))
        if head is None:
            head = self._heads[(method, path)] = f"{method} {self.prefix}{path} HTTP/1.1\r\n".encode() + self._fixed
        return head

    def _take_idle(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if conn.reusable() and now - conn.idle_since < IDLE_SECONDS:
                return conn
            conn.abort()
        return None

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _transport, conn = await loop.create_connection(lambda: _Connection(self), self.host, self.port, ssl=self.ssl,
                                                        server_hostname=self.host if self.ssl else None)
        self.connections_made += 1
        return conn

    def forget(self, conn: _Connection) -> None:
        self._open.discard(conn)
        if conn in self._idle:
            self._idle.remove(conn)

    async def close(self) -> None:
        for conn in list(self._open):
            conn.abort()
        self._idle.clear()
        await asyncio.sleep(0)  # the transports close on the loop's next turn


# Where a reply is in its reading.
HEAD, LENGTH, CHUNKED, TO_CLOSE = range(4)


class _Connection(asyncio.BufferedProtocol):
    """One connection: one request at a time, its reply parsed as bytes arrive."""

    def __init__(self, pool: Pool):
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future | None = None
        self.closed = False
        self.replied = False  # a byte of the current reply has arrived
        self.idle_since = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self._start()

    def _start(self) -> None:
        self.state, self.remaining, self.status, self.headers = HEAD, 0, 0, {}
        self.body, self.keep_alive = bytearray(), True

    # -- the asyncio protocol -------------------------------------------------------------
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.pool._open.add(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self.pool.read_view

    def buffer_updated(self, nbytes: int) -> None:
        self.buffer += self.pool.read_view[:nbytes]
        if self.waiter is None:  # bytes nobody asked for: this connection cannot be trusted
            self.abort()
            return
        self.replied = True
        try:
            self._advance()
        except WireError as exc:
            self._fail(exc)

    def eof_received(self) -> bool:
        return False  # close the transport: connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        if self.waiter is None or self.waiter.done():
            return
        if self.state == TO_CLOSE:  # a reply without a length ends with its connection
            try:
                self._done()
            except WireError as error:
                self._fail(error)
            return
        reason = f"{type(exc).__name__}: {exc}" if exc else "the server closed the connection"
        self._fail(WireError(reason if self.replied else f"{reason} before replying"))

    # -- one exchange ---------------------------------------------------------------------
    def exchange(self, data: bytes, deadline: float | None = None) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        waiter = self.waiter = loop.create_future()
        self.replied = False
        if self.closed or self.transport.is_closing():
            self._fail(WireError("the server closed the connection before replying"))
            return waiter
        if deadline is not None:
            self.timer = loop.call_at(deadline, self._expire)
        self.transport.write(data)
        return waiter

    def _expire(self) -> None:
        self.timer = None
        self._fail(TimeoutError())
        self.abort()

    def reusable(self) -> bool:
        return not self.closed and self.keep_alive and self.waiter is None and not self.transport.is_closing()

    def abort(self) -> None:
        self._stop_timer()
        self.closed = True
        self.keep_alive = False
        if self.transport is not None:
            self.transport.abort()

    def _fail(self, exc: Exception) -> None:
        self._stop_timer()
        waiter, self.waiter = self.waiter, None
        self.keep_alive = False
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _done(self, body: bytes | None = None) -> None:
        body = _decoded(bytes(self.body) if body is None else body, self.headers.get("content-encoding", ""))
        response = Response(self.status, self.headers, body)
        self._stop_timer()
        waiter, self.waiter = self.waiter, None
        keep = self.keep_alive and not self.buffer  # bytes beyond the reply: do not reuse
        self._start()
        self.keep_alive = keep
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    def _stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    # -- reading a reply ------------------------------------------------------------------
    def _advance(self) -> None:
        buffer = self.buffer
        while True:
            if self.state == HEAD:
                end = _find(buffer, b"\r\n\r\n", MAX_HEAD, "the reply's headers never end")
                if end < 0:
                    return
                head = bytes(buffer[:end])
                del buffer[: end + 4]
                if not self._read_head(head):
                    continue  # an interim reply (100 Continue): the real one follows
                if self.state == LENGTH and self.remaining == 0:
                    self._done()
                    return
            elif self.state == LENGTH:
                if len(buffer) < self.remaining:
                    return
                body = bytes(buffer[: self.remaining]) if len(buffer) > self.remaining else bytes(buffer)
                del buffer[: self.remaining]
                self._done(body)
                return
            elif self.state == CHUNKED:
                line_end = _find(buffer, b"\r\n", MAX_CHUNK_LINE, "a chunk size line of the reply never ends")
                if line_end < 0:
                    return
                size = _chunk_size(bytes(buffer[:line_end]))
                if size > MAX_BODY - len(self.body):
                    raise WireError(f"the reply is larger than {MAX_BODY} bytes")
                if size == 0:  # the last chunk, then trailers (usually none) and an empty line
                    end = line_end if buffer.startswith(b"\r\n", line_end + 2) else buffer.find(b"\r\n\r\n", line_end)
                    if end < 0 or len(buffer) < end + 4:
                        if len(buffer) > MAX_HEAD:
                            raise WireError("the reply's trailers never end")
                        return
                    del buffer[: end + 4]
                    self._done()
                    return
                if len(buffer) < line_end + 2 + size + 2:
                    return
                if buffer[line_end + 2 + size : line_end + 2 + size + 2] != b"\r\n":
                    raise WireError("a chunk of the reply does not end where its size says")
                self.body += buffer[line_end + 2 : line_end + 2 + size]
                del buffer[: line_end + 2 + size + 2]
            else:  # TO_CLOSE
                self.body += buffer
                buffer.clear()
                _check_size(self.body)
                return

    def _read_head(self, head: bytes) -> bool:
        """Status and headers of a reply; False for an interim (1xx) one."""
        lines = head.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        try:
            status = int(rest[:3])
        except ValueError:
            raise WireError(f"not an HTTP reply: {lines[0][:80]!r}") from None
        if not version.startswith("HTTP/"):
            raise WireError(f"not an HTTP reply: {lines[0][:80]!r}")
        if 100 <= status < 200 and status != 101:
            return False
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self.status, self.headers = status, headers
        connection = headers.get("connection", "").lower()
        self.keep_alive = "close" not in connection and (version != "HTTP/1.0" or "keep-alive" in connection)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self.state = CHUNKED
        elif "content-length" in headers:
            try:
                self.remaining = int(headers["content-length"])
            except ValueError:
                raise WireError(f"unreadable Content-Length {headers['content-length']!r}") from None
            if not 0 <= self.remaining <= MAX_BODY:
                raise WireError(f"the reply's Content-Length {self.remaining} is out of range (at most {MAX_BODY} bytes)")
            self.state = LENGTH
        elif status in (204, 304):
            self.state, self.remaining = LENGTH, 0
        else:
            self.state, self.keep_alive = TO_CLOSE, False
        return True


def _find(buffer: bytearray, separator: bytes, limit: int, never_ends: str) -> int:
    """Where `separator` starts, or -1 while more bytes may bring it; past `limit` bytes without
    it the reply is not one this client reads (a hostile server must not fill the memory)."""
    at = buffer.find(separator)
    if at < 0 and len(buffer) > limit:
        raise WireError(never_ends)
    return at


def _chunk_size(line: bytes) -> int:
    """The size of a chunk from its line (hex digits, then perhaps ';extensions'); Python's
    int(x, 16) would also take '-6', '0x10' and '1_0', and a negative size would never advance."""
    digits = line.split(b";", 1)[0].strip()
    if not 1 <= len(digits) <= 16 or digits.strip(b"0123456789abcdefABCDEF"):
        raise WireError(f"a chunk of the reply has no readable size: {line[:40]!r}")
    return int(digits, 16)


def _inflate(body: bytes, window: int, encoding: str) -> bytes:
    """Decompressed, at most MAX_BODY bytes (a small bomb must not fill the memory)."""
    try:
        inflater = zlib.decompressobj(window)
        out = inflater.decompress(body, MAX_BODY + 1)
    except zlib.error as exc:
        raise WireError(f"the reply's {encoding} body cannot be decoded: {exc}") from None
    if len(out) > MAX_BODY or inflater.unconsumed_tail:
        raise WireError(f"the reply's {encoding} body is larger than {MAX_BODY} bytes decoded")
    return out


def _check_size(body: bytearray) -> None:
    if len(body) > MAX_BODY:
        raise WireError(f"the reply is larger than {MAX_BODY} bytes")


def _decoded(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        return _inflate(body, 16 + zlib.MAX_WBITS, encoding)
    if encoding == "deflate":
        try:
            return _inflate(body, zlib.MAX_WBITS, encoding)
        except WireError:
            return _inflate(body, -zlib.MAX_WBITS, encoding)  # raw deflate, as some servers send it
    raise WireError(f"the reply is encoded as {encoding!r}, which this client cannot read")
