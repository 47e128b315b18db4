"""Probes a server's HTTP/2 framing, stream and flow-control rules (RFC 9113) with a raw
client: each case runs on a fresh cleartext prior-knowledge connection, sends bytes a
well-behaved or a broken client would, and reports what the server did.

usage: h2_conformance.py PORT [CASE...]
prints one line per case: "NAME OUTCOME", where OUTCOME is, for example,
  "goaway=1"          the server sent GOAWAY with that error code (and closed)
  "rst=7"             the server reset the case's stream with that code
  "status=200"        the response's :status (when the case is about a response)
or a case-specific word (see each case).

With H2_CORPUS=DIR set, the bytes each case's connections sent are also written to DIR, one
file per connection, as inputs for the frame fuzzer (Fuzz/HTTP2FrameFuzzer: a first byte that
says the preface is included and the pieces are 64 bytes, then the bytes).

The cases need a demo upstream behind the server: /slow?delay_ms=N answers late, ?bytes=N
sends a body of N bytes, /anything echoes the request as JSON.
"""
import json
import os
import socket
import struct
import sys
import time
from h2_wire import PREFACE, decode_status, frame, integer, literal, skip_table_size_updates

PORT = int(sys.argv[1])
DATA, HEADERS, PRIORITY, RST, SETTINGS, PUSH, PING, GOAWAY, WINDOW, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS, PADDED = 0x1, 0x1, 0x4, 0x8


def request(method=b"GET", path=b"/", extra=()):
    block = literal(b":method", method) + literal(b":scheme", b"http") + literal(b":path", path)
    block += literal(b":authority", b"localhost")
    for name, value in extra:
        block += literal(name, value)
    return block


def settings(*pairs):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


# What each connection of the current case sent (for H2_CORPUS).
SENT = []


class Connection:
    def __init__(self, client_settings=b"", opening=None):
        """`opening`: what the connection starts with instead of the preface and SETTINGS."""
        self.sock = socket.create_connection(("127.0.0.1", PORT))
        self.sock.settimeout(5)
        self.buffer = b""
        self.closed = False
        self.sent = bytearray()
        SENT.append(self.sent)
        self.sent += opening if opening is not None else PREFACE + (client_settings or settings())
        self.sock.sendall(bytes(self.sent))

    def send(self, data):
        self.sent += data
        try:
            self.sock.sendall(data)
        except OSError:
            self.closed = True

    def frames(self, seconds=3.0):
        """Yields (kind, flags, stream, payload) until the deadline or the connection's end."""
        deadline = time.time() + seconds
        while True:
            while len(self.buffer) >= 9:
                length = int.from_bytes(self.buffer[0:3], "big")
                if len(self.buffer) < 9 + length:
                    break
                kind, flags = self.buffer[3], self.buffer[4]
                stream = int.from_bytes(self.buffer[5:9], "big") & 0x7FFFFFFF
                payload = self.buffer[9:9 + length]
                self.buffer = self.buffer[9 + length:]
                if kind == SETTINGS and not flags & ACK:
                    self.send(frame(SETTINGS, ACK, 0))
                yield kind, flags, stream, payload
            if self.closed or time.time() > deadline:
                return
            self.sock.settimeout(max(0.01, deadline - time.time()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return
            except OSError:
                self.closed = True
                return
            if not chunk:
                self.closed = True
                return
            self.buffer += chunk

    def outcome(self, stream=None, seconds=3.0):
        """The first GOAWAY, RST_STREAM or response HEADERS (on `stream`) the server sends."""
        for kind, flags, sid, payload in self.frames(seconds):
            if kind == GOAWAY:
                return "goaway=%d" % int.from_bytes(payload[4:8], "big")
            if kind == RST and (stream is None or sid == stream):
                return "rst=%d" % int.from_bytes(payload[0:4], "big")
            if kind == HEADERS and (stream is None or sid == stream):
                return "status=%d" % decode_status(payload)
        return "closed" if self.closed else "nothing"

    def response(self, stream, seconds=5.0):
        """(status, body, largest DATA frame) of a whole response on `stream`."""
        status, body, largest = None, b"", 0
        for kind, flags, sid, payload in self.frames(seconds):
            if kind == GOAWAY:
                return ("goaway=%d" % int.from_bytes(payload[4:8], "big"), body, largest)
            if sid != stream:
                continue
            if kind == RST:
                return ("rst=%d" % int.from_bytes(payload[0:4], "big"), body, largest)
            if kind == HEADERS and status is None:
                status = decode_status(payload)
            if kind == DATA:
                body += payload
                largest = max(largest, len(payload))
            if flags & END_STREAM and kind in (HEADERS, DATA):
                return (status, body, largest)
        return (status, body, largest)


def case_ping():
    c = Connection()
    c.send(frame(PING, 0, 0, b"12345678"))
    for kind, flags, _, payload in c.frames():
        if kind == PING:
            return "ack" if flags & ACK and payload == b"12345678" else "wrong"
    return "nothing"


def case_settings_acknowledged():
    c = Connection()
    for kind, flags, _, _ in c.frames():
        if kind == SETTINGS and flags & ACK:
            return "ack"
    return "nothing"


def case_first_frame_not_settings():
    return Connection(opening=PREFACE + frame(PING, 0, 0, b"12345678")).outcome()


def case_bad_preface():
    return Connection(opening=b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + settings()).outcome()


def case_data_on_idle_stream():
    c = Connection()
    c.send(frame(DATA, END_STREAM, 1, b"x"))
    return c.outcome()


def case_even_stream():
    c = Connection()
    c.send(frame(HEADERS, END_STREAM | END_HEADERS, 2, request()))
    return c.outcome()


def case_frame_too_large():
    c = Connection()
    c.send(frame(PING, 0, 0, b"x" * 16385))
    return c.outcome()


def case_push_promise():
    c = Connection()
    c.send(frame(PUSH, END_HEADERS, 1, struct.pack(">I", 2) + request()))
    return c.outcome()


def case_rst_on_idle_stream():
    c = Connection()
    c.send(frame(RST, 0, 5, struct.pack(">I", 8)))
    return c.outcome()


def case_window_update_of_zero():
    c = Connection()
    c.send(frame(WINDOW, 0, 0, struct.pack(">I", 0)))
    return c.outcome()


def case_connection_window_overflow():
    c = Connection()
    c.send(frame(WINDOW, 0, 0, struct.pack(">I", 0x7FFFFFFF)))
    return c.outcome()


def case_initial_window_too_large():
    return Connection(settings((0x4, 0x80000000))).outcome()


def case_max_frame_size_too_small():
    return Connection(settings((0x5, 100))).outcome()


def case_interrupted_header_block():
    c = Connection()
    block = request()
    c.send(frame(HEADERS, END_STREAM, 1, block[:5]) + frame(PING, 0, 0, b"12345678"))
    return c.outcome()


def case_continuation():
    """A request block split over HEADERS and two CONTINUATION frames: answered."""
    c = Connection()
    block = request(path=b"/anything")
    c.send(frame(HEADERS, END_STREAM, 1, block[:7]) + frame(CONTINUATION, 0, 1, block[7:20])
           + frame(CONTINUATION, END_HEADERS, 1, block[20:]))
    return c.outcome(1)


def case_padding():
    """Padded HEADERS (with priority) and padded DATA: the padding is not part of the body."""
    c = Connection()
    block = struct.pack(">IB", 0, 16) + request(b"POST", b"/anything", [(b"content-length", b"5")])
    c.send(frame(HEADERS, END_HEADERS | PADDED | 0x20, 1, bytes([7]) + block + b"\0" * 7))
    c.send(frame(DATA, END_STREAM | PADDED, 1, bytes([3]) + b"hello" + b"\0" * 3))
    status, body, _ = c.response(1)
    return "status=%s received=%s" % (status, json.loads(body)["received_bytes"] if status == 200 else "-")


def case_trailers():
    """A body without a length, then trailers: the upstream gets the body, chunked."""
    c = Connection()
    c.send(frame(HEADERS, END_HEADERS, 1, request(b"POST", b"/anything")))
    c.send(frame(DATA, 0, 1, b"hello"))
    c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, literal(b"x-checksum", b"abc")))
    status, body, _ = c.response(1)
    return "status=%s received=%s" % (status, json.loads(body)["received_bytes"] if status == 200 else "-")


def case_trailers_without_end_stream():
    c = Connection()
    c.send(frame(HEADERS, END_HEADERS, 1, request(b"POST", b"/slow?delay_ms=2000")))
    c.send(frame(HEADERS, END_HEADERS, 1, literal(b"x-checksum", b"abc")))
    return c.outcome(1)


def case_body_shorter_than_its_length():
    c = Connection()
    c.send(frame(HEADERS, END_HEADERS, 1, request(b"POST", b"/anything", [(b"content-length", b"10")])))
    c.send(frame(DATA, END_STREAM, 1, b"hello"))
    return c.outcome(1)


def case_body_longer_than_its_length():
    c = Connection()
    c.send(frame(HEADERS, END_HEADERS, 1, request(b"POST", b"/anything", [(b"content-length", b"3")])))
    c.send(frame(DATA, END_STREAM, 1, b"hello"))
    return c.outcome(1)


def case_length_without_body():
    c = Connection()
    c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, request(b"POST", b"/anything", [(b"content-length", b"3")])))
    return c.outcome(1)


def case_data_after_end_stream():
    c = Connection()
    c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, request(path=b"/slow?delay_ms=2000")))
    c.send(frame(DATA, 0, 1, b"late"))
    return c.outcome(1)


def case_stream_window_overflow():
    c = Connection()
    c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, request(path=b"/slow?delay_ms=2000")))
    c.send(frame(WINDOW, 0, 1, struct.pack(">I", 0x7FFFFFFF)))
    return c.outcome(1)


def case_too_many_streams():
    """One stream over SETTINGS_MAX_CONCURRENT_STREAMS (which the server announced)."""
    c = Connection()
    limit = None
    for kind, flags, _, payload in c.frames():
        if kind == SETTINGS and not flags & ACK:
            pairs = [struct.unpack(">HI", payload[i:i + 6]) for i in range(0, len(payload), 6)]
            limit = dict(pairs).get(0x3)
            break
    batch = b""
    for i in range(limit + 1):
        batch += frame(HEADERS, END_STREAM | END_HEADERS, 1 + 2 * i, request(path=b"/slow?delay_ms=1500"))
    c.send(batch)
    return "limit=%d %s" % (limit, c.outcome(1 + 2 * limit))


def case_oversized_headers_then_more():
    """A 40 KB header over two CONTINUATIONs: 431 on its stream, the next stream is served."""
    c = Connection()
    block = request(extra=[(b"x-big", b"v" * 40000)])
    c.send(frame(HEADERS, END_STREAM, 1, block[:16000]) + frame(CONTINUATION, 0, 1, block[16000:32000])
           + frame(CONTINUATION, END_HEADERS, 1, block[32000:]))
    first = c.outcome(1)
    c.send(frame(HEADERS, END_STREAM | END_HEADERS, 3, request()))
    return "%s then %s" % (first, c.outcome(3))


def case_frames_within_the_peer_frame_size():
    """A 100,000-byte body to a client with default settings: DATA frames of at most 16,384
    bytes, sent as the client's windows (64 KiB) are given back."""
    c = Connection()
    c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, request(path=b"/anything?bytes=100000")))
    status, body, largest = None, b"", 0
    received = 0
    for kind, flags, sid, payload in c.frames(5):
        if kind == HEADERS and sid == 1:
            status = decode_status(payload)
        if kind == DATA and sid == 1:
            body += payload
            largest = max(largest, len(payload))
            received += len(payload)
            if payload:
                c.send(frame(WINDOW, 0, 0, struct.pack(">I", len(payload))) + frame(WINDOW, 0, 1, struct.pack(">I", len(payload))))
            if flags & END_STREAM:
                break
    return "status=%s bytes=%d largest=%d" % (status, len(body), largest)


def case_zero_window_holds_data_until_update():
    c = Connection(settings((0x4, 0)))
    c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, request(path=b"/anything?bytes=10")))
    early = b""
    for kind, flags, sid, payload in c.frames(0.5):
        if kind == DATA and sid == 1:
            early += payload
    c.send(frame(WINDOW, 0, 1, struct.pack(">I", 100)))
    status, body, _ = c.response(1, 3)
    return "before=%d after=%d" % (len(early), len(body))


def case_decoder_table_shrunk():
    """A client whose HPACK decoder table is 0 bytes: the response block says the table is 0."""
    c = Connection(settings((0x1, 0)))
    c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, request()))
    for kind, _, sid, payload in c.frames():
        if kind == HEADERS and sid == 1:
            _, updates = skip_table_size_updates(payload)
            return "updates=%s status=%d" % (updates, decode_status(payload))
    return "nothing"


def case_client_goaway_closes_once_done():
    c = Connection()
    c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, request(path=b"/slow?delay_ms=300")))
    c.send(frame(GOAWAY, 0, 0, struct.pack(">II", 1, 0)))
    status, _, _ = c.response(1)
    for _ in c.frames(2):
        pass
    return "status=%s %s" % (status, "closed" if c.closed else "open")


def flood(frames, before=b""):
    """Sends `before`, then `frames` in one write, and reports what the server did."""
    c = Connection()
    c.send(before + b"".join(frames))
    return c.outcome()


def case_settings_flood():
    """150 SETTINGS frames: each asks for an acknowledgement."""
    return flood([settings()] * 150)


def case_ping_flood():
    return flood([frame(PING, 0, 0, b"12345678")] * 150)


def case_priority_flood():
    return flood([frame(PRIORITY, 0, 1, struct.pack(">IB", 0, 16))] * 1100)


def case_unknown_frame_flood():
    return flood([frame(0xFA, 0, 0, b"x")] * 1100)


def case_empty_data_flood():
    """A request body that never comes: 1,100 empty DATA frames on its stream."""
    return flood([frame(DATA, 0, 1)] * 1100, frame(HEADERS, END_HEADERS, 1, request(b"POST", b"/slow?delay_ms=2000")))


def case_continuation_flood():
    """A header block that never ends: empty CONTINUATION frames, which cost no header bytes."""
    return flood([frame(CONTINUATION, 0, 1)] * 40, frame(HEADERS, END_STREAM, 1, request()[:5]))


def case_indexed_field_bomb():
    """A 4,000-byte field put in the decoder's table, then named 12,000 times by a one-byte index:
    48 MB of fields from 16 KB of block. The connection ends; nothing that size is built."""
    c = Connection()
    indexed = b"\x40" + integer(5, 7) + b"x-big" + integer(4000, 7) + b"a" * 4000  # literal, added to the table
    block = request() + indexed + bytes([0x80 | 62]) * 12000  # indexed: the table's newest entry
    pieces = [block[i:i + 16000] for i in range(0, len(block), 16000)]
    sent = frame(HEADERS, END_STREAM | (END_HEADERS if len(pieces) == 1 else 0), 1, pieces[0])
    for index, piece in enumerate(pieces[1:], start=2):
        sent += frame(CONTINUATION, END_HEADERS if index == len(pieces) else 0, 1, piece)
    c.send(sent)
    return c.outcome(1)


def case_stream_below_one_used():
    """Stream 5 answered, then a new stream 3: an identifier below one already used."""
    c = Connection()
    c.send(frame(HEADERS, END_STREAM | END_HEADERS, 5, request()))
    status, _, _ = c.response(5)
    c.send(frame(HEADERS, END_STREAM | END_HEADERS, 3, request()))
    return "status=%s then %s" % (status, c.outcome())


def case_data_on_closed_stream():
    """DATA on a stream both sides ended: STREAM_CLOSED."""
    c = Connection()
    c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, request()))
    status, _, _ = c.response(1)
    c.send(frame(DATA, 0, 1, b"late"))
    return "status=%s then %s" % (status, c.outcome())


def case_frames_after_a_reset_are_ignored():
    """The server resets stream 1; the client's DATA already in flight there is ignored, and the
    connection serves the next stream."""
    c = Connection()
    c.send(frame(HEADERS, END_HEADERS, 1, request(b"POST", b"/slow?delay_ms=2000")))
    c.send(frame(HEADERS, END_HEADERS, 1, literal(b"x-checksum", b"abc")))
    first = c.outcome(1)
    c.send(frame(DATA, 0, 1, b"in flight") + frame(HEADERS, END_STREAM | END_HEADERS, 3, request()))
    return "%s then %s" % (first, c.outcome(3))


def case_initial_window_overflows_a_stream():
    """A stream's send window raised to the maximum, then SETTINGS_INITIAL_WINDOW_SIZE one more."""
    c = Connection()
    c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, request(path=b"/slow?delay_ms=2000")))
    c.send(frame(WINDOW, 0, 1, struct.pack(">I", 0x7FFFFFFF - 65535)))
    c.send(settings((0x4, 65536)))
    return c.outcome()


CASES = {name[5:].replace("_", "-"): fn for name, fn in sorted(globals().items()) if name.startswith("case_")}

def write_corpus(directory, name):
    for index, sent in enumerate(SENT):
        with open(os.path.join(directory, "%s-%d" % (name, index)), "wb") as out:
            out.write(b"\xbf" + bytes(sent[:65536]))


for name in sys.argv[2:] or CASES:
    SENT.clear()
    try:
        print(name, CASES[name]())
    except Exception as error:  # a case that breaks reports it rather than hiding the others
        print(name, "error=%r" % (error,))
    if os.environ.get("H2_CORPUS"):
        write_corpus(os.environ["H2_CORPUS"], name)
    sys.stdout.flush()
