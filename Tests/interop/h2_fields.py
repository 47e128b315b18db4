"""Sends one GET over HTTP/2 (cleartext, prior knowledge) with the header fields given, in their
order and each as a field of its own (as a browser sends cookie crumbs), and reports the answer.

usage: h2_fields.py PORT PATH NAME:VALUE...  (a backslash, x and two hex digits in a field stand for that byte;
a ":authority:VALUE" field replaces the default authority, localhost)
prints "status=CODE", "rst=CODE" or "none"
"""
import socket
import sys
from h2_wire import PREFACE, decode_status, frame, frames, literal

port, path = int(sys.argv[1]), sys.argv[2].encode()
block = literal(b":method", b"GET") + literal(b":scheme", b"http") + literal(b":path", path)
fields = []
for field in sys.argv[3:]:
    raw = field.encode().decode("unicode_escape").encode("latin-1")
    pseudo = raw.startswith(b":")
    name, _, value = raw[pseudo:].partition(b":")
    fields.append((b":" * pseudo + name, value))
authorities = [value for name, value in fields if name == b":authority"]
block += literal(b":authority", authorities[0] if authorities else b"localhost")
for name, value in fields:
    if name != b":authority":
        block += literal(name, value)

s = socket.create_connection(("127.0.0.1", port))
s.settimeout(5)
s.sendall(PREFACE + frame(0x4, 0, 0) + frame(0x1, 0x5, 1, block))  # HEADERS, END_STREAM | END_HEADERS

answer = "none"
for kind, stream, payload in frames(s, 5):
    if stream == 1 and kind == 0x3:
        answer = "rst=%d" % int.from_bytes(payload[0:4], "big")
        break
    if stream == 1 and kind == 0x1:
        answer = "status=%d" % decode_status(payload)
        break
print(answer)
