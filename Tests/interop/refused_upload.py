"""Sends a request the server refuses, then keeps uploading, and reports whether the refusal
still reached the client and how the connection ended.

usage: refused_upload.py PORT http1|h2c [MEGABYTES]
  http1: a POST whose Transfer-Encoding the server does not read (it answers 501 and closes),
         followed by MEGABYTES (default 8) of body
  h2c:   a PING frame larger than the server's frame size (a connection error: GOAWAY), followed
         by MEGABYTES of bytes
prints "sent=all|cut answer=WORDS end=fin|reset|open", where WORDS is the answer's status line
("HTTP/1.1 501 ...") or "goaway=CODE", or "none"; then, once the answer is read, keeps the
connection open, sending a byte now and then without closing it, and prints "released SECONDS"
once a send fails (the server let the connection go) or "held" after 20 seconds.
"""
import socket
import sys
import threading
import time
from h2_wire import PREFACE, frame

PORT, PROTOCOL = int(sys.argv[1]), sys.argv[2]
MEGABYTES = int(sys.argv[3]) if len(sys.argv) > 3 else 8

if PROTOCOL == "http1":
    opening = b"POST /anything HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: gzip\r\n\r\n"
else:
    opening = PREFACE + frame(4, 0, 0) + frame(6, 0, 0, b"x" * 16385)  # SETTINGS; PING over the frame size

s = socket.create_connection(("127.0.0.1", PORT))
s.settimeout(10)
sent = {"all": False}


def upload():
    try:
        s.sendall(opening)
        chunk = b"a" * 65536
        for _ in range(MEGABYTES * 16):
            s.sendall(chunk)
        sent["all"] = True
    except OSError:
        pass


# The upload runs beside the reads: a server that stops reading must not deadlock the client.
uploader = threading.Thread(target=upload)
uploader.start()
received, end = b"", "open"
try:
    while True:
        data = s.recv(65536)
        if not data:
            end = "fin"
            break
        received += data
except socket.timeout:
    end = "open"
except OSError:
    end = "reset"
uploader.join(20)

answer = "none"
if PROTOCOL == "http1":
    if received.startswith(b"HTTP/"):
        answer = received.split(b"\r\n", 1)[0].decode("latin-1")
else:
    while len(received) >= 9:
        length = int.from_bytes(received[0:3], "big")
        kind = received[3]
        payload = received[9:9 + length]
        received = received[9 + length:]
        if kind == 7 and len(payload) >= 8:
            answer = "goaway=%d" % int.from_bytes(payload[4:8], "big")
            break
print("sent=%s answer=%s end=%s" % ("all" if sent["all"] else "cut", answer, end))

# A client that never closes its side: the server's lingering end must still let go.
start = time.time()
released = None
while time.time() - start < 20:
    try:
        s.send(b"z")
    except OSError:
        released = time.time() - start
        break
    time.sleep(0.05)
print("released %.1f" % released if released is not None else "held")
