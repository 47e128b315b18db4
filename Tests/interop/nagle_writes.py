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
       nagle_writes.py h2client PORT COUNT
         the same over cleartext HTTP/2 (prior knowledge), one stream after another, each
         request's HEADERS and DATA written apart
"""
import socket
import statistics
import sys
import threading
import time
from draining import connect
from h2_wire import PREFACE, frame, literal

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


def report(times):
    print("median_ms=%.1f slowest_ms=%.1f" % (statistics.median(times), max(times)), flush=True)


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
    report(times)


def h2client(port, count):
    sock = connect(port)
    sock.settimeout(10)
    sock.sendall(PREFACE + frame(0x4, 0, 0))
    pending, times = b"", []

    def next_frame():
        nonlocal pending
        while len(pending) < 9 or len(pending) < 9 + int.from_bytes(pending[0:3], "big"):
            data = sock.recv(65536)
            if not data:
                sys.exit("the connection ended")
            pending += data
        length = int.from_bytes(pending[0:3], "big")
        kind, flags = pending[3], pending[4]
        stream = int.from_bytes(pending[5:9], "big") & 0x7FFFFFFF
        pending = pending[9 + length:]
        return kind, flags, stream

    for index in range(count):
        stream = 2 * index + 1
        block = literal(b":method", b"POST") + literal(b":scheme", b"http") + literal(b":path", b"/nagle")
        block += literal(b":authority", b"localhost") + literal(b"content-length", b"%d" % len(BODY))
        start = time.monotonic()
        sock.sendall(frame(0x1, 0x4, stream, block))  # HEADERS, END_HEADERS
        sock.sendall(frame(0x0, 0x1, stream, BODY))  # DATA, END_STREAM
        while True:
            kind, flags, on = next_frame()
            if kind == 0x4 and not flags & 0x1:
                sock.sendall(frame(0x4, 0x1, 0))  # SETTINGS acknowledged
            if kind == 0x7 or (kind == 0x3 and on == stream):
                sys.exit("refused: frame type %d" % kind)
            if on == stream and kind in (0x0, 0x1) and flags & 0x1:
                break
        times.append((time.monotonic() - start) * 1000)
    report(times)


if sys.argv[1] == "upstream":
    upstream()
elif sys.argv[1] == "h2client":
    h2client(int(sys.argv[2]), int(sys.argv[3]))
else:
    client(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "split", sys.argv[5] if len(sys.argv) > 5 else None)
