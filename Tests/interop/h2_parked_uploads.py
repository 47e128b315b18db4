"""Uploads as fast as HTTP/2 flow control allows on many streams whose requests the server
cannot forward yet (their limiter makes them wait), to measure what the server holds.

usage: h2_parked_uploads.py PORT CONNECTIONS STREAMS BYTES_PER_STREAM SECONDS
prints "sent=N" (the DATA bytes the server's windows let through, all connections together).
"""
import socket
import struct
import sys
import threading
import time
from h2_wire import PREFACE, frame, literal

PORT, CONNECTIONS, STREAMS, BYTES, SECONDS = (int(a) for a in sys.argv[1:6])
DATA, HEADERS, SETTINGS, WINDOW = 0, 1, 4, 8
CHUNK = b"x" * 16384
sent = [0]
lock = threading.Lock()


def upload():
    sock = socket.create_connection(("127.0.0.1", PORT))
    sock.sendall(PREFACE + frame(SETTINGS, 0, 0))
    connection_window, initial, stream_windows = 65535, 65535, {}
    ids = [1 + 2 * i for i in range(STREAMS)]
    block = (literal(b":method", b"POST") + literal(b":scheme", b"http") + literal(b":path", b"/upload")
             + literal(b":authority", b"localhost"))
    sock.sendall(b"".join(frame(HEADERS, 0x4, sid, block) for sid in ids))
    left = {sid: BYTES for sid in ids}
    buffer = b""
    deadline = time.time() + SECONDS
    sock.setblocking(False)
    while time.time() < deadline:
        try:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buffer += chunk
        except BlockingIOError:
            pass
        except OSError:
            break
        while len(buffer) >= 9:
            length = int.from_bytes(buffer[0:3], "big")
            if len(buffer) < 9 + length:
                break
            kind, flags, sid = buffer[3], buffer[4], int.from_bytes(buffer[5:9], "big") & 0x7FFFFFFF
            payload, buffer = buffer[9:9 + length], buffer[9 + length:]
            if kind == SETTINGS and not flags & 1:
                for i in range(0, len(payload), 6):
                    key, value = struct.unpack(">HI", payload[i:i + 6])
                    if key == 4:
                        for s in ids:
                            stream_windows[s] = stream_windows.get(s, initial) + value - initial
                        initial = value
                sock.setblocking(True)
                sock.sendall(frame(SETTINGS, 1, 0))
                sock.setblocking(False)
            elif kind == WINDOW:
                increment = int.from_bytes(payload[0:4], "big") & 0x7FFFFFFF
                if sid == 0:
                    connection_window += increment
                else:
                    stream_windows[sid] = stream_windows.get(sid, initial) + increment
        progressed = False
        for sid in ids:
            size = min(len(CHUNK), left[sid], connection_window, stream_windows.get(sid, initial))
            if size <= 0:
                continue
            try:
                sock.setblocking(True)
                sock.settimeout(0.05)
                sock.sendall(frame(DATA, 0, sid, CHUNK[:size]))
            except OSError:
                continue
            finally:
                sock.setblocking(False)
            connection_window -= size
            stream_windows[sid] = stream_windows.get(sid, initial) - size
            left[sid] -= size
            progressed = True
            with lock:
                sent[0] += size
        if not progressed:
            time.sleep(0.01)
    sock.close()


threads = [threading.Thread(target=upload) for _ in range(CONNECTIONS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("sent=%d" % sent[0])
