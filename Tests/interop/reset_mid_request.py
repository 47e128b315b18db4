"""Asks for a slow answer (5 s), then, while it is pending, resets: the TCP connection (HTTP/1.1,
with SO_LINGER 0) or the HTTP/2 stream (RST_STREAM CANCEL, over cleartext prior knowledge), or
ends the HTTP/2 connection with a connection error (a frame larger than the server allows)
without ever closing the socket.

usage: reset_mid_request.py PORT connection|stream|connection-error
With connection-error, it then asks GET /x on new connections (for 2 s) while the first one
stays open, and prints "freed" once one is answered 200, or "held" and exits 1.
"""
import socket
import struct
import sys
import time
from h2_wire import PREFACE, frame, literal

port, what = int(sys.argv[1]), sys.argv[2]
s = socket.create_connection(("127.0.0.1", port))
if what == "connection":
    s.sendall(b"GET /slow?delay_ms=5000 HTTP/1.1\r\nHost: x\r\n\r\n")
    time.sleep(0.3)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
else:
    block = literal(b":method", b"GET") + literal(b":scheme", b"http") + literal(b":authority", b"x")
    block += literal(b":path", b"/slow?delay_ms=5000")
    s.sendall(PREFACE + frame(4, 0, 0) + frame(1, 5, 1, block))  # SETTINGS; HEADERS, END_STREAM
    time.sleep(0.3)
    if what == "stream":
        s.sendall(frame(3, 0, 1, struct.pack(">I", 8)))  # RST_STREAM, CANCEL
        time.sleep(0.2)
        sys.exit(0)
    s.sendall(frame(6, 0, 0, b"x" * 16385))  # PING over the frame size: GOAWAY FRAME_SIZE_ERROR
    deadline = time.time() + 2
    while time.time() < deadline:
        probe = socket.create_connection(("127.0.0.1", port))
        probe.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        status = probe.recv(12)[9:12]
        probe.close()
        if status == b"200":
            print("freed")
            sys.exit(0)
        time.sleep(0.1)
    print("held")
    sys.exit(1)
