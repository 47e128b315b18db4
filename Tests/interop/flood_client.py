"""Sends a request prefix, then floods the connection with filler bytes as fast as the server
takes them, for a bounded number of bytes and seconds, then reads whatever the server answered.

usage: flood_client.py PORT PREFIX_HEX FILLER_HEX MEGABYTES SECONDS  (the filler: bytes repeated, in hex)
prints "sent=N answer=<first line of the answer, or nothing>"
"""
import socket
import sys
import time

port, prefix = int(sys.argv[1]), bytes.fromhex(sys.argv[2])
filler, megabytes, seconds = bytes.fromhex(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])

sock = socket.create_connection(("127.0.0.1", port))
sock.settimeout(1)
sent = 0
answer = b""
chunk = filler * (65536 // len(filler))
deadline = time.monotonic() + seconds
try:
    sock.sendall(prefix)
    while sent < megabytes << 20 and time.monotonic() < deadline:
        try:
            sent += sock.send(chunk)
        except socket.timeout:
            continue
except OSError:
    pass
try:
    sock.settimeout(3)
    while len(answer) < 4096:
        data = sock.recv(4096)
        if not data:
            break
        answer += data
except OSError:
    pass
print("sent=%d answer=%s" % (sent, answer.split(b"\r\n")[0].decode("latin-1")))
