"""Sends one HTTP/2 request with a body and a trailer section (HEADERS after DATA, END_STREAM)
on a cleartext prior-knowledge connection, and reports what the server answered.

usage: h2_trailers.py PORT PATH NAME:VALUE...  (each argument after PATH is one trailer field)
prints "headers", "rst=CODE" or "none"
"""
import socket
import sys
from h2_wire import PREFACE, frame, frames, literal

port, path = int(sys.argv[1]), sys.argv[2].encode()
head = literal(b":method", b"POST") + literal(b":scheme", b"http") + literal(b":path", path)
head += literal(b":authority", b"localhost") + literal(b"x-api-key", b"sent-over-h2")
trailers = b""
for field in sys.argv[3:]:
    name, _, value = field.encode().partition(b":")
    trailers += literal(name, value)

s = socket.create_connection(("127.0.0.1", port))
s.settimeout(5)
s.sendall(
    PREFACE + frame(0x4, 0, 0)
    + frame(0x1, 0x4, 1, head)  # HEADERS, END_HEADERS
    + frame(0x0, 0, 1, b"hello")  # DATA
    + frame(0x1, 0x5, 1, trailers)  # HEADERS, END_STREAM | END_HEADERS
)

answer = "none"
for kind, stream, payload in frames(s, 5):
    if stream == 1 and kind == 0x3:
        answer = "rst=%d" % int.from_bytes(payload[0:4], "big")
    elif stream == 1 and kind == 0x1:
        answer = "headers"
    if answer != "none":
        break
print(answer)
