"""Sends HTTP/2 requests HTTP/2 calls malformed (RFC 9113, 8.2 and 8.3), some of which would
smuggle bytes into an HTTP/1.1 request line or header block, then a valid one, all on one
cleartext prior-knowledge connection, and reports what the server answered on each stream.

usage: h2_malformed.py PORT
prints one line per stream: "NAME rst=CODE", "NAME status=CODE" or "NAME none"
"""
import socket
import sys
from h2_wire import PREFACE, decode_status, frame, frames, literal

port = int(sys.argv[1])


def request(path=b"/echo", extra=(), authority=b"localhost"):
    block = literal(b":method", b"GET") + literal(b":scheme", b"http") + literal(b":path", path)
    if authority is not None:
        block += literal(b":authority", authority)
    for name, value in extra:
        block += literal(name, value)
    return block


cases = [
    ("space-in-path", request(b"/echo HTTP/1.1")),
    ("crlf-in-path", request(b"/echo\r\nx-injected: 1")),
    ("lf-in-value", request(extra=[(b"x-a", b"b\nx-injected: 1")])),
    ("upper-case-name", request(extra=[(b"X-Injected", b"1")])),
    ("connection-field", request(extra=[(b"connection", b"close")])),
    ("host-differs", request(extra=[(b"host", b"admin.example")])),
    ("absolute-path", request(path=b"http://admin.example/echo")),
    ("obs-text-path", request(b"/caf\xe9")),
    ("utf8-path", request("/café".encode())),
    ("two-content-lengths", request(extra=[(b"content-length", b"0"), (b"content-length", b"0")])),
    ("no-authority", request(authority=None)),
    ("valid", request()),
]

s = socket.create_connection(("127.0.0.1", port))
s.settimeout(5)
out = PREFACE + frame(0x4, 0, 0)
for i, (_, block) in enumerate(cases):
    out += frame(0x1, 0x5, 1 + 2 * i, block)  # HEADERS, END_STREAM | END_HEADERS
s.sendall(out)

answers = {}
for kind, stream, payload in frames(s, 5):
    if stream % 2 == 1 and stream not in answers:
        if kind == 0x3:
            answers[stream] = "rst=%d" % int.from_bytes(payload[0:4], "big")
        elif kind == 0x1:
            answers[stream] = "status=%d" % decode_status(payload)
    if len(answers) == len(cases):
        break
for i, (name, _) in enumerate(cases):
    print(name, answers.get(1 + 2 * i, "none"))
