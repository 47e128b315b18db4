"""A client that asks for large responses on many HTTP/2 streams and then reads nothing: its
stream windows are zero (SETTINGS_INITIAL_WINDOW_SIZE = 0), so no response data may be sent to
it. A server that kept reading its upstreams meanwhile would hold every body in memory.

usage: h2_slow_reader.py PORT STREAMS SECONDS
prints "sent=N" once the requests are out, then "done" after SECONDS of silence
"""
import socket
import struct
import sys
import time
from h2_wire import PREFACE, frame, literal

port, streams, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])


s = socket.create_connection(("127.0.0.1", port))
settings = struct.pack(">HI", 0x4, 0)  # SETTINGS_INITIAL_WINDOW_SIZE = 0
out = PREFACE + frame(0x4, 0, 0, settings)
for i in range(streams):
    block = literal(b":method", b"GET") + literal(b":scheme", b"http")
    block += literal(b":path", b"/big?bytes=20000000&n=%d" % i) + literal(b":authority", b"localhost")
    out += frame(0x1, 0x5, 1 + 2 * i, block)  # HEADERS, END_STREAM | END_HEADERS
s.sendall(out)
print(f"sent={streams}", flush=True)
time.sleep(seconds)
s.close()
print("done", flush=True)
