"""Opens several keep-alive connections; on each, sends one request with a body of the given size
and reads its whole answer; then holds every connection open, idle, so the server's memory can be
looked at.

usage: idle_after_body.py PORT CONNECTIONS BODY_BYTES
prints "idle=N statuses=S" (S: the distinct statuses answered) once all are idle, then holds for 30 s
"""
import socket
import sys
import time

port, connections, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
body = b"x" * size
head = b"POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % size


def answer(sock):
    """Reads one answer with a Content-Length, whole; returns its status."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return "closed"
        data += chunk
    head_bytes, rest = data.split(b"\r\n\r\n", 1)
    length = 0
    for line in head_bytes.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return "closed"
        rest += chunk
    return head_bytes.split(b" ")[1].decode()


socks, statuses = [], set()
for _ in range(connections):
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(10)
    sock.sendall(head + body)
    statuses.add(answer(sock))
    socks.append(sock)
print("idle=%d statuses=%s" % (len(socks), ",".join(sorted(statuses))), flush=True)
time.sleep(30)
