"""An HTTP/2 client (prior knowledge over cleartext, or ALPN over TLS) that asks for a large
answer and then takes none of it, one of two ways:

  socket: reads nothing from its socket (its windows as large as HTTP/2 allows) for STALL
          seconds, then reads until the server closes (or a bounded wait ends);
  window: reads its socket all along, but never opens the stream's window (nor the
          connection's), watching for STALL seconds for the stream's reset.

usage: h2_stalled_reader.py PORT PATH MODE STALL [tls]
(tls: over TLS, ALPN h2, the certificate not checked; otherwise cleartext)
prints "sent" once its request is written, then "received=N closed=1|0" (socket) or
"reset=CODE|none" (window)
"""
import struct
import sys
import time
from draining import connect, read_until_close
from h2_wire import PREFACE, frame, frames, literal

port, path, mode, stall = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3], float(sys.argv[4])
tls = sys.argv[5:] == ["tls"]
sock = connect(port, "h2" if tls else None, receive_buffer=4096 if mode == "socket" else None)
out = PREFACE
if mode == "socket":
    largest = 2**31 - 1
    out += frame(0x4, 0, 0, struct.pack(">HI", 0x4, largest))  # SETTINGS_INITIAL_WINDOW_SIZE
    out += frame(0x8, 0, 0, struct.pack(">I", largest - 65535))  # WINDOW_UPDATE, the connection
else:
    out += frame(0x4, 0, 0)
block = literal(b":method", b"GET") + literal(b":scheme", b"https" if tls else b"http")
block += literal(b":path", path) + literal(b":authority", b"localhost")
out += frame(0x1, 0x5, 1, block)  # HEADERS, END_STREAM | END_HEADERS
sock.sendall(out)
print("sent", flush=True)

if mode == "socket":
    time.sleep(stall)
    received, closed = read_until_close(sock, 10)
    print("received=%d closed=%d" % (received, closed), flush=True)
else:
    # A read that times out ends the watch (the frame reader stops at any socket error).
    sock.settimeout(stall)
    reset = "none"
    for kind, flags, stream, payload in frames(sock, stall, with_flags=True):
        if kind == 0x4 and not flags & 0x1:
            sock.sendall(frame(0x4, 0x1, 0))  # SETTINGS ack
        elif kind == 0x3 and stream == 1:
            reset = str(int.from_bytes(payload[:4], "big"))
            break
    print("reset=%s" % reset, flush=True)
