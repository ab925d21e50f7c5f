"""HTTP/1.1 as the OpenAI-compatible client speaks it (llms/http_wire.py), against loopback
servers that write their replies byte by byte as the test scripts them: keep-alive reuse,
chunked and to-the-end bodies, compressed bodies, a connection the server dropped while idle,
a reply cut short, a server that never answers."""

import asyncio
import gzip
import time

import pytest

from notos.llms.http_wire import Pool, WireError


async def read_request(reader: asyncio.StreamReader) -> tuple[str, bytes] | None:
    """The request line and body of the next request on a connection (None at its end)."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    length = next((int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:")), 0)
    return lines[0], await reader.readexactly(length)


def serve(handler, check):
    """Start `handler(reader, writer)` on a loopback port, run `check(pool)` against it."""

    async def main():
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = Pool(f"http://127.0.0.1:{port}/v1", {"Content-Type": "application/json"})
        try:
            return await check(pool)
        finally:
            await pool.close()
            server.close()

    return asyncio.run(main())


def reply(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    head = [f"HTTP/1.1 {status}", *headers]
    if not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in headers):
        head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def test_one_connection_carries_request_after_request():
    seen = []

    async def handler(reader, writer):
        while (request := await read_request(reader)) is not None:
            seen.append(request)
            writer.write(reply(b'{"n": %d}' % len(seen)))
        writer.close()

    async def check(pool):
        bodies = [(await pool.request("POST", "/chat/completions", b'{"q": %d}' % i)).body for i in range(5)]
        models = await pool.request("GET", "/models")
        return bodies, models, pool.connections_made

    bodies, models, connections = serve(handler, check)
    assert bodies == [b'{"n": %d}' % i for i in range(1, 6)] and models.status == 200 and connections == 1
    assert [line for line, _ in seen] == ["POST /v1/chat/completions HTTP/1.1"] * 5 + ["GET /v1/models HTTP/1.1"]
    assert [body for _, body in seen[:5]] == [b'{"q": %d}' % i for i in range(5)] and seen[5][1] == b""


def test_a_chunked_reply_arriving_a_byte_at_a_time():
    async def handler(reader, writer):
        while await read_request(reader) is not None:
            raw = (b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nRetry-After: 3\r\n\r\n"
                   b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: yes\r\n\r\n")
            for i in range(len(raw)):
                writer.write(raw[i : i + 1])
                await writer.drain()
                await asyncio.sleep(0)
        writer.close()

    async def check(pool):
        first = await pool.request("POST", "/x", b"{}")
        second = await pool.request("POST", "/x", b"{}")
        return first, second, pool.connections_made

    first, second, connections = serve(handler, check)
    assert (first.status, first.body, first.headers["retry-after"]) == (201, b"hello, world", "3")
    assert second.body == b"hello, world" and connections == 1  # the trailer was read whole: reusable


def test_a_reply_without_a_length_ends_with_its_connection_and_is_not_reused():
    async def handler(reader, writer):
        if await read_request(reader) is not None:
            writer.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + b'{"old": "server"}')
            await writer.drain()
        writer.close()

    async def check(pool):
        replies = [await pool.request("POST", "/x", b"{}") for _ in range(2)]
        return [r.body for r in replies], pool.connections_made

    assert serve(handler, check) == ([b'{"old": "server"}'] * 2, 2)


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compressed_reply_is_decoded(encoding):
    import zlib

    data = b'{"choices": [' + b'"text", ' * 200 + b'"end"]}'
    packed = gzip.compress(data) if encoding == "gzip" else zlib.compress(data)

    async def handler(reader, writer):
        await read_request(reader)
        writer.write(reply(packed, f"Content-Encoding: {encoding}"))
        writer.close()

    async def check(pool):
        return (await pool.request("POST", "/x", b"{}")).body

    assert serve(handler, check) == data


def test_the_request_head_names_the_host_and_asks_for_no_compression():
    heads = []

    async def handler(reader, writer):
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        await reader.readexactly(2)
        writer.write(reply(b"{}"))
        writer.close()

    async def check(pool):
        await pool.request("POST", "/chat/completions", b"{}")
        return pool.port

    port = serve(handler, check)
    lines = heads[0].decode().split("\r\n")
    assert lines[0] == "POST /v1/chat/completions HTTP/1.1"
    assert f"Host: 127.0.0.1:{port}" in lines and "Accept-Encoding: identity" in lines
    assert "Content-Type: application/json" in lines and "Content-Length: 2" in lines


def test_a_connection_the_server_dropped_while_idle_is_replaced_without_an_error():
    requests = []

    async def handler(reader, writer):
        if (request := await read_request(reader)) is not None:
            requests.append(request)
            writer.write(reply(b"{}"))  # keep-alive by the book, then closed all the same
            await writer.drain()
        writer.close()

    async def check(pool):
        first = await pool.request("POST", "/x", b"1")
        await asyncio.sleep(0.05)  # the server has closed the idle connection by now
        second = await pool.request("POST", "/x", b"2")
        return first.status, second.status, pool.connections_made

    assert serve(handler, check) == (200, 200, 2)
    assert [body for _, body in requests] == [b"1", b"2"]  # each request reached the server once


def test_a_reused_connection_closed_without_a_reply_sends_the_request_again_on_a_new_one():
    # The server's idle timeout fires as the next request arrives: it closes without answering.
    requests = []

    async def handler(reader, writer):
        answered = False
        while (request := await read_request(reader)) is not None:
            requests.append(request[1])
            if answered:
                break
            writer.write(reply(b"{}"))
            answered = True
        writer.close()

    async def check(pool):
        first = await pool.request("POST", "/x", b"1")
        second = await pool.request("POST", "/x", b"2")
        return first.status, second.status, pool.connections_made

    assert serve(handler, check) == (200, 200, 2)
    assert requests == [b"1", b"2", b"2"]  # the second never answered on the first connection


def test_a_reply_cut_short_is_an_error_and_its_connection_is_dropped():
    async def handler(reader, writer):
        if await read_request(reader) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
            await writer.drain()
        writer.close()

    async def check(pool):
        with pytest.raises(WireError, match="closed the connection"):
            await pool.request("POST", "/x", b"{}")
        return len(pool._idle), pool.connections_made

    assert serve(handler, check) == (0, 1)  # not sent again: the server had begun to answer


def test_an_interim_100_continue_is_skipped():
    async def handler(reader, writer):
        if await read_request(reader) is not None:
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n" + reply(b'{"ok": 1}'))
        writer.close()

    async def check(pool):
        return (await pool.request("POST", "/x", b"{}")).body

    assert serve(handler, check) == b'{"ok": 1}'


def test_a_server_that_never_answers_times_out_and_closes_the_connection():
    async def handler(reader, writer):
        await read_request(reader)
        await asyncio.sleep(5)
        writer.close()

    async def check(pool):
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await pool.request("POST", "/x", b"{}", timeout=0.3)
        return time.monotonic() - started, len(pool._idle), len(pool._open)

    waited, idle, still_open = serve(handler, check)
    assert 0.25 < waited < 2 and idle == 0


def test_not_an_http_reply_is_an_error():
    async def handler(reader, writer):
        await read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
        writer.close()

    async def check(pool):
        with pytest.raises(WireError, match="not an HTTP reply"):
            await pool.request("POST", "/x", b"{}")

    serve(handler, check)


def test_a_refused_connection_is_an_oserror():
    async def main():
        pool = Pool("http://127.0.0.1:9/v1")
        with pytest.raises(OSError):
            await pool.request("POST", "/x", b"{}", timeout=5)
        await pool.close()

    asyncio.run(main())


@pytest.mark.parametrize("head", ["Content-Length: -5", "Content-Length: 999999999999"])
def test_a_content_length_out_of_range_is_an_error(head):
    async def handler(reader, writer):
        if await read_request(reader) is not None:
            writer.write(reply(b"{}", head))
        writer.close()

    async def check(pool):
        with pytest.raises(WireError, match="out of range"):
            await pool.request("POST", "/x", b"{}", timeout=5)

    serve(handler, check)


def test_an_endless_reply_stops_at_the_size_limit(monkeypatch):
    from notos.llms import http_wire

    monkeypatch.setattr(http_wire, "MAX_BODY", 100_000)

    async def handler(reader, writer):
        if await read_request(reader) is None:
            return
        writer.write(b"HTTP/1.1 200 OK\r\n\r\n")  # no length: the body would end with the connection
        try:
            for _ in range(1000):
                writer.write(b"x" * 10_000)
                await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    async def check(pool):
        with pytest.raises(WireError, match="larger than 100000 bytes"):
            await pool.request("POST", "/x", b"{}", timeout=10)

    serve(handler, check)


@pytest.mark.parametrize("chunks, message", [
    (b"-6\r\nabcdef\r\n0\r\n\r\n", "no readable size"),  # int("-6", 16) is -6: it used to loop forever
    (b"0x3\r\nabc\r\n0\r\n\r\n", "no readable size"),
    (b"3\r\nabcXY0\r\n\r\n", "does not end where its size says"),
    (b"FFFFFFFFFFFF\r\n", "larger than"),
])
def test_a_broken_chunked_reply_is_an_error_not_a_hang(chunks, message):
    async def handler(reader, writer):
        if await read_request(reader) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
            await writer.drain()
            await asyncio.sleep(2)
        writer.close()

    async def check(pool):
        with pytest.raises(WireError, match=message):
            await pool.request("POST", "/x", b"{}", timeout=5)

    serve(handler, check)


def test_a_compressed_reply_that_inflates_past_the_limit_is_an_error(monkeypatch):
    from notos.llms import http_wire

    monkeypatch.setattr(http_wire, "MAX_BODY", 100_000)
    bomb = gzip.compress(b"0" * 1_000_000)  # 1 MB from ~1 KB

    async def handler(reader, writer):
        if await read_request(reader) is not None:
            writer.write(reply(bomb, "Content-Encoding: gzip"))
        writer.close()

    async def check(pool):
        with pytest.raises(WireError, match="larger than 100000 bytes decoded"):
            await pool.request("POST", "/x", b"{}", timeout=5)

    serve(handler, check)
