"""Sends a plain CONNECT (RFC 9113, 8.5: `:method` and `:authority` only) whose DATA is an
HTTP/1.1 request, as a client opening a tunnel would, then a GET of `/after` on the same
cleartext prior-knowledge connection, and reports what the server answered on each stream.

usage: h2_connect.py PORT AUTHORITY
prints one line per stream: "NAME rst=CODE", "NAME status=CODE" or "NAME none"
"""
import socket
import sys
from h2_wire import PREFACE, decode_status, frame, frames, literal

port, authority = int(sys.argv[1]), sys.argv[2].encode()
connect = literal(b":method", b"CONNECT") + literal(b":authority", authority)
tunnelled = b"GET /tunnelled HTTP/1.1\r\nHost: a\r\n\r\n"
after = literal(b":method", b"GET") + literal(b":scheme", b"http") + literal(b":path", b"/after") + literal(b":authority", b"a")

s = socket.create_connection(("127.0.0.1", port))
s.settimeout(5)
s.sendall(
    PREFACE + frame(0x4, 0, 0)
    + frame(0x1, 0x4, 1, connect)  # HEADERS, END_HEADERS: the tunnel's bytes follow
    + frame(0x0, 0x1, 1, tunnelled)  # DATA, END_STREAM
    + frame(0x1, 0x5, 3, after)  # HEADERS, END_STREAM | END_HEADERS
)
answers = {}
for kind, stream, payload in frames(s, 5):
    if stream in (1, 3) and stream not in answers:
        if kind == 0x3:
            answers[stream] = "rst=%d" % int.from_bytes(payload[0:4], "big")
        elif kind == 0x1:
            answers[stream] = "status=%d" % decode_status(payload)
    if len(answers) == 2:
        break
print("connect", answers.get(1, "none"))
print("after", answers.get(3, "none"))
