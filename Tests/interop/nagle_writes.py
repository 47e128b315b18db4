"""Peers that leave Nagle's algorithm on (TCP_NODELAY unset, as a plain socket has it) and write
a message's head and its body as two writes, as Python's http.server does with its answers. The
body then waits in the peer's kernel until the head is acknowledged; a receiver with nothing to
send in between, on a connection the kernel sees as interactive, delays that acknowledgement
(40 ms or more on Linux) unless it asks for it at once.

usage: nagle_writes.py upstream
         an HTTP/1.1 upstream on a free port ("listening on 127.0.0.1:PORT"), keeping connections
         alive, answering every request 200 with its head and body written apart
       nagle_writes.py client PORT COUNT split|whole [ALPN]
         COUNT POST requests on one kept-alive connection (over TLS offering ALPN if given), each
         head and body written apart (split) or in one write (whole); prints "median_ms=M
         slowest_ms=S": from a request's first byte sent to its whole answer read
"""
import socket
import statistics
import sys
import threading
import time
from draining import connect

BODY = b"0123456789"


def read_message(sock, pending):
    """Reads one head and its Content-Length body from `sock`, `pending` holding bytes read
    before. Returns (head, what was read beyond the message), or None at the connection's end."""
    while b"\r\n\r\n" not in pending:
        data = sock.recv(65536)
        if not data:
            return None
        pending += data
    head, rest = pending.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        data = sock.recv(65536)
        if not data:
            return None
        rest += data
    return head, rest[length:]


def serve(sock):
    pending = b""
    with sock:
        while True:
            message = read_message(sock, pending)
            if message is None:
                return
            pending = message[1]
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY))
            sock.sendall(BODY)


def upstream():
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    print("listening on 127.0.0.1:%d" % listener.getsockname()[1], flush=True)
    while True:
        sock, _ = listener.accept()
        threading.Thread(target=serve, args=(sock,), daemon=True).start()


def client(port, count, split, alpn):
    sock = connect(port, alpn)
    sock.settimeout(10)
    head = b"POST /nagle HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n" % len(BODY)
    times, pending = [], b""
    for _ in range(count):
        start = time.monotonic()
        if split:
            sock.sendall(head)
            sock.sendall(BODY)
        else:
            sock.sendall(head + BODY)
        message = read_message(sock, pending)
        if message is None:
            sys.exit("the connection ended")
        if not message[0].startswith(b"HTTP/1.1 200"):
            sys.exit("answered %r" % message[0])
        pending = message[1]
        times.append((time.monotonic() - start) * 1000)
    print("median_ms=%.1f slowest_ms=%.1f" % (statistics.median(times), max(times)), flush=True)


if sys.argv[1] == "upstream":
    upstream()
else:
    client(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "split", sys.argv[5] if len(sys.argv) > 5 else None)
