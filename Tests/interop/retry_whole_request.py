"""A request whose body was sent in part before its end came, to a target that then breaks
without answering: sent again to another target, it would reach that target with its body cut
short (the part already sent was not kept). It must be sent again whole, or not at all.

The breaking target, run here, reads each request up to its last chunk and closes without
answering; the other target is the caller's (recording_upstream.py, which records the bodies it
reads). Each client request (a PUT, idempotent, so another target may be tried) sends its head
and a first chunk, waits for the gateway to connect to a target and send them, then sends its
last chunk.

usage: retry_whole_request.py GATEWAY_PORT BREAKING_PORT
prints each answer's status and how many requests the breaking target read; exits 0 when every
answer is 200 or 502 and some request went to the breaking target first.
"""
import socket
import sys
import threading
import time

gateway_port, breaking_port = int(sys.argv[1]), int(sys.argv[2])
REQUESTS = 8
broken = []


def breaking(connection):
    """Reads a request to its last chunk (the only empty chunk), then closes without a word."""
    data = b""
    while b"\r\n0\r\n\r\n" not in data:
        received = connection.recv(65536)
        if not received:
            break
        data += received
    else:
        broken.append(data)
    connection.close()


def accept(listener):
    while True:
        connection, _ = listener.accept()
        threading.Thread(target=breaking, args=(connection,), daemon=True).start()


threading.Thread(target=accept, args=(socket.create_server(("127.0.0.1", breaking_port)),), daemon=True).start()

statuses = []
for _ in range(REQUESTS):
    client = socket.create_connection(("127.0.0.1", gateway_port))
    client.settimeout(10)
    client.sendall(b"PUT /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
    time.sleep(0.3)
    client.sendall(b"0\r\n\r\n")
    answer = b""
    while True:
        received = client.recv(65536)
        if not received:
            break
        answer += received
    client.close()
    statuses.append(answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/1.1 ") else "none")

print("statuses: %s" % statuses, flush=True)
print("the breaking target read %d requests" % len(broken), flush=True)
sys.exit(0 if broken and all(status in ("200", "502") for status in statuses) else 1)
