"""Throws frames of random kinds, flags, streams and payloads, some of them mutated valid
requests, at a server over cleartext prior-knowledge connections: a server must answer each
with frames, a GOAWAY or a close, never by crashing or hanging.

usage: h2_fuzz.py PORT SEED CONNECTIONS
prints "connections=N answered=A" (A: connections on which the server sent anything)
"""
import random
import socket
import sys
from h2_wire import PREFACE, frame, literal

port, seed, connections = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed)


REQUEST = (literal(b":method", b"POST") + literal(b":scheme", b"http") + literal(b":path", b"/anything")
           + literal(b":authority", b"localhost") + literal(b"content-length", b"4"))


def mutate(data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if data and rng.random() < 0.7:
            data[rng.randrange(len(data))] = rng.randrange(256)
        else:
            data.insert(rng.randint(0, len(data)), rng.randrange(256))
    return bytes(data)


def random_frame():
    stream = rng.choice([0, 1, 1, 3, 3, 5, 2, 7, 0x7FFFFFFF])
    roll = rng.random()
    if roll < 0.3:
        block = mutate(REQUEST) if rng.random() < 0.5 else REQUEST
        return frame(1, rng.choice([0x4, 0x5, 0x0, 0x1, 0x2D, 0x24]), stream, block)
    if roll < 0.5:
        return frame(0, rng.choice([0, 1, 8, 9]), stream, bytes(rng.randrange(256) for _ in range(rng.randint(0, 20))))
    kind = rng.randrange(12)
    payload = bytes(rng.randrange(256) for _ in range(rng.choice([0, 4, 5, 6, 8, 12, rng.randint(0, 40)])))
    return frame(kind, rng.randrange(256), stream, payload)


answered = 0
for _ in range(connections):
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(2)
    data = PREFACE + frame(4, 0, 0)
    data += b"".join(random_frame() for _ in range(rng.randint(1, 12)))
    if rng.random() < 0.2:
        data = mutate(data)
    try:
        s.sendall(data)
        got = s.recv(65536)
        if got:
            answered += 1
    except OSError:
        pass
    s.close()
print("connections=%d answered=%d" % (connections, answered))
