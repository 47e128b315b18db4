"""A request whose body was sent in part before its end came, to a target that then breaks
without answering: sent again to another target, it would reach that target with its body cut
short (the part already sent was not kept). It must be sent again whole, or not at all.

Two targets: one reads each request to its last chunk and closes without answering; the other
answers each request with the body it received. Each client request (a PUT, idempotent, so
another target may be tried) sends its head and a first chunk, waits for the gateway to connect
to a target and send them, then sends its last chunk.

usage: retry_whole_request.py GATEWAY_PORT BREAKING_PORT ANSWERING_PORT
prints each answer's status and what the answering target received; exits 0 when that target
only ever received whole bodies and some request went to the breaking target first.
"""
import socket
import sys
import threading
import time

gateway_port, breaking_port, answering_port = (int(arg) for arg in sys.argv[1:4])
REQUESTS = 8
BODY = b"hello"
bodies_received = []
broken = []


def server(port, serve):
    listener = socket.create_server(("127.0.0.1", port))

    def accept():
        while True:
            connection, _ = listener.accept()
            threading.Thread(target=serve, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()


def receive_more(connection, data):
    received = connection.recv(65536)
    if not received:
        raise EOFError
    return data + received


def read_chunked_request(connection, data):
    """One request with a chunked body, from `data` on: its body and the bytes after it, or
    None once the connection closes."""
    try:
        while b"\r\n\r\n" not in data:
            data = receive_more(connection, data)
        _, _, rest = data.partition(b"\r\n\r\n")
        body = b""
        while True:
            while b"\r\n" not in rest:
                rest = receive_more(connection, rest)
            size_line, _, rest = rest.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(rest) < size + 2:
                rest = receive_more(connection, rest)
            if size == 0:
                # No trailers here: the last chunk's line is followed by the empty line.
                return body, rest[2:]
            body += rest[:size]
            rest = rest[size + 2:]
    except (EOFError, OSError):
        return None, b""


def breaking(connection):
    body, _ = read_chunked_request(connection, b"")
    if body is not None:
        broken.append(body)
    connection.close()


def answering(connection):
    data = b""
    while True:
        body, data = read_chunked_request(connection, data)
        if body is None:
            connection.close()
            return
        bodies_received.append(body)
        connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


server(breaking_port, breaking)
server(answering_port, answering)
time.sleep(0.2)

statuses = []
for _ in range(REQUESTS):
    client = socket.create_connection(("127.0.0.1", gateway_port))
    client.settimeout(10)
    client.sendall(b"PUT /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"%x\r\n%s\r\n" % (len(BODY), BODY))
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
print("the breaking target read: %s" % broken, flush=True)
print("the answering target read: %s" % bodies_received, flush=True)
whole = all(body == BODY for body in bodies_received)
answered = all(status in ("200", "502") for status in statuses)
sys.exit(0 if whole and answered and broken and bodies_received else 1)
