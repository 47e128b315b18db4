"""What the raw HTTP/2 clients of these tests share: the preface, frames, and HPACK literals
(no Huffman coding, no indexing), written byte by byte so that each client controls exactly
what goes on the wire, malformed included."""
import struct
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def integer(value, prefix_bits, flags=0):
    """An HPACK integer (RFC 7541, 5.1)."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([flags | value])
    out, value = [flags | limit], value - limit
    while value >= 128:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + [value])


def literal(name, value):
    """An HPACK literal field without indexing, new name, no Huffman coding."""
    return b"\x00" + integer(len(name), 7) + name + integer(len(value), 7) + value


def frames(sock, seconds, with_flags=False):
    """Yields each frame the peer sends as (type, stream, payload), or (type, flags, stream,
    payload) `with_flags`, until it closes or `seconds` have passed."""
    data = b""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            chunk = sock.recv(65536)
        except OSError:
            return
        if not chunk:
            return
        data += chunk
        while len(data) >= 9:
            length = int.from_bytes(data[0:3], "big")
            if len(data) < 9 + length:
                break
            kind, stream = data[3], int.from_bytes(data[5:9], "big") & 0x7FFFFFFF
            payload, flags, data = data[9:9 + length], data[4], data[9 + length:]
            yield (kind, flags, stream, payload) if with_flags else (kind, stream, payload)


def skip_table_size_updates(block):
    """The block after the dynamic table size updates (RFC 7541, 6.3) it starts with, and them."""
    updates = []
    while block and block[0] & 0xE0 == 0x20:
        value, i = block[0] & 0x1F, 1
        if value == 0x1F:
            shift = 0
            while True:
                value += (block[i] & 0x7F) << shift
                shift += 7
                i += 1
                if not block[i - 1] & 0x80:
                    break
        updates.append(value)
        block = block[i:]
    return block, updates


def decode_status(block):
    """The :status of a response block as this server encodes it: indexed or literal."""
    block, _ = skip_table_size_updates(block)
    first = block[0]
    if first & 0x80:
        return {8: 200, 9: 204, 10: 206, 11: 304, 12: 400, 13: 404, 14: 500}[first & 0x7F]
    length = block[1]
    return int(block[2:2 + length])
