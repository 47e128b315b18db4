"""An upstream that closes its idle kept-alive connection just as a client's next request
reaches the proxy: both happen while the proxy is stopped (SIGSTOP), the request first, so that
the proxy wakes to the request, sends it on the connection it believes idle, and only then
learns that the upstream had closed it. The upstream never saw that request: it must be sent
again on a fresh connection, not answered 502.

usage: idle_close_race.py PROXY_PORT UPSTREAM_PORT PROXY_PID [chunked]
(`chunked`: the second request is a POST with an empty chunked body, whose last chunk must be
sent again too)
prints "second answer: <body>" and exits 0 when the second request got its own answer.
"""
import os
import signal
import socket
import sys
import time

proxy_port, upstream_port, proxy_pid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
chunked = sys.argv[4:] == ["chunked"]
SECOND = (b"POST /second HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" if chunked
          else b"GET /second HTTP/1.1\r\nHost: a\r\n\r\n")


def read_head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise EOFError("closed before a whole head")
        data += chunk
    return data


def read_answer(sock):
    """One answer framed by Content-Length (the proxy's answers here are): its body."""
    head, _, body = read_head(sock).partition(b"\r\n\r\n")
    fields = [line.split(b":", 1) for line in head.split(b"\r\n")[1:]]
    length = int([value for name, value in fields if name.strip().lower() == b"content-length"][0])
    while len(body) < length:
        body += sock.recv(65536)
    return body[:length]


upstream = socket.create_server(("127.0.0.1", upstream_port))
upstream.settimeout(10)
client = socket.create_connection(("127.0.0.1", proxy_port))
client.settimeout(10)

client.sendall(b"GET /first HTTP/1.1\r\nHost: a\r\n\r\n")
kept, _ = upstream.accept()
read_head(kept)
kept.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst")
print("first answer: %s" % read_answer(client).decode(), flush=True)
time.sleep(0.2)  # the connection is back in the proxy's pool, idle

os.kill(proxy_pid, signal.SIGSTOP)
try:
    client.sendall(SECOND)
    time.sleep(0.1)
    kept.close()
    time.sleep(0.1)
finally:
    os.kill(proxy_pid, signal.SIGCONT)

# A fresh connection is answered, if the proxy opens one.
upstream.settimeout(3)
try:
    fresh, _ = upstream.accept()
    fresh.settimeout(3)
    request = read_head(fresh)
    # A chunked request is whole only with its last chunk: answered once that came too.
    while chunked and not request.endswith(b"0\r\n\r\n"):
        request += fresh.recv(65536)
    if b"/second" in request:
        fresh.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")
except (OSError, EOFError):
    pass
second = read_answer(client).decode()
print("second answer: %s" % second, flush=True)
sys.exit(0 if second == "second" else 1)
