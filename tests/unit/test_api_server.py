"""The API as its container runs it (`python -m apps.api` under uvicorn), attacked over real sockets:
oversized bodies are refused before they are read, slow or silent clients are cut off, and the
connection bound answers 503 instead of exhausting file descriptors."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from apps.waiting import wait_for
from environments import load_environment
from harness.load.target import api_process, local_registry

pytestmark = pytest.mark.process  # the API as its own process on 127.0.0.1
HEADER_TIMEOUT_S = 1.0
MAX_CONNECTIONS = 32


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    env = load_environment("local", overrides={"apps": {"inference_api": {
        "header_timeout_s": HEADER_TIMEOUT_S, "max_connections": MAX_CONNECTIONS}}})
    root = tmp_path_factory.mktemp("api")
    with api_process(env=env, registry_uri=local_registry(root / "models", env=env), log_path=root / "api.log") as url:
        pid = _listener_pid(int(url.rsplit(":", 1)[1]))
        yield url, pid


def _listener_pid(port: int) -> int:
    """The process listening on `port` (the server), from /proc."""
    inode = next(line.split()[9] for line in Path("/proc/net/tcp").read_text().splitlines()[1:]
                 if line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]" for fd in os.listdir(f"/proc/{pid}/fd")):
                return int(pid)
        except OSError:
            continue
    raise AssertionError(f"no process listens on {port}")


def _status(pid: int, field: str) -> int:
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith(field))
    return int(line.split()[1])


def _address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


def _read_reply(sock: socket.socket) -> bytes:
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_a_body_over_the_limit_is_413_before_it_is_read(server: tuple[str, int]) -> None:
    url, pid = server
    limit = load_environment("local").apps.inference_api.body_limit
    # A 200 MB declaration followed by nothing: the answer comes without the body ever being sent.
    with socket.create_connection(_address(url)) as sock:
        sock.sendall(b"POST /v1/predict/batch HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 200000000\r\n\r\n")
        reply = _read_reply(sock)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    # A chunked body with no declared size: reading stops at the limit, memory stays where it was.
    rss_before = _status(pid, "VmRSS:")
    chunk = b"[" + b"1.0," * 250_000 + b"1.0]"  # ~1 MB a chunk, 50 of them
    with socket.create_connection(_address(url)) as sock:
        sock.sendall(b"POST /v1/predict/batch HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        sent = 0
        try:
            for _ in range(50):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: exactly the point
        reply = _read_reply(sock)
    assert reply.startswith(b"HTTP/1.1 413") and b"MAX_BODY_BYTES" in reply, reply[:300]
    assert _status(pid, "VmRSS:") - rss_before < 64 * 1024, "kB grown: the body was buffered past the limit"
    assert sent < 50 * len(chunk) or limit < 50 * len(chunk)
    assert httpx.post(url + "/v1/predict", json={"features": list(range(1, 21))}, timeout=10).status_code == 200


def test_wrong_media_type_and_float32_overflow_are_refused_by_the_server(server: tuple[str, int]) -> None:
    url, _ = server
    text = httpx.post(url + "/predict-single", content=b'{"features": [1]}', headers={"content-type": "text/plain"})
    assert text.status_code == 415 and "application/json" in text.json()["detail"]
    huge = httpx.post(url + "/predict-single", json={"features": [1e39] + [1.0] * 19})
    assert huge.status_code == 422 and huge.json()["detail"][0]["loc"] == ["body", "features", 0], huge.text


def test_silent_and_slow_clients_are_cut_off_and_the_connection_bound_answers_503(server: tuple[str, int]) -> None:
    url, pid = server
    fds_before = len(os.listdir(f"/proc/{pid}/fd"))
    idle = [socket.create_connection(_address(url)) for _ in range(MAX_CONNECTIONS * 2)]
    slow = socket.create_connection(_address(url))
    slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: api\r\n")  # half a request, never finished
    try:
        # Over the bound: a new client is told so at once instead of waiting or breaking the server.
        wait_for(lambda: httpx.get(url + "/healthz", timeout=5).status_code == 503,
                 what="a 503 while the connection bound is reached", timeout=HEADER_TIMEOUT_S * 5, interval=0.05,
                 transient=(httpx.TransportError,))
        started = time.monotonic()
        for sock in [*idle, slow]:
            sock.settimeout(HEADER_TIMEOUT_S * 10)
            assert sock.recv(1) == b"", "the server closes a connection that sent no complete request"
        assert time.monotonic() - started < HEADER_TIMEOUT_S * 10
    finally:
        for sock in [*idle, slow]:
            sock.close()
    assert httpx.get(url + "/healthz", timeout=5).status_code == 200
    wait_for(lambda: len(os.listdir(f"/proc/{pid}/fd")) <= fds_before + 2, what="the server's descriptors released",
             timeout=10, interval=0.1, describe=lambda: f"{len(os.listdir(f'/proc/{pid}/fd'))} open, {fds_before} before")
