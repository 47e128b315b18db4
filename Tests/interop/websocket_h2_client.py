"""WebSocket over HTTP/2 (RFC 8441) through the gateway, with the `h2` library: an extended
CONNECT on a cleartext HTTP/2 connection (prior knowledge), then WebSocket frames in DATA.

usage: websocket_h2_client.py PORT MODE [N]
  echo N        one tunnel; N text messages sent, each expected back; then a close frame
                both ways and END_STREAM; prints "echoed N"
  handshakes N  N extended CONNECTs one after another on one connection; prints their statuses
  settings      prints the server's SETTINGS_ENABLE_CONNECT_PROTOCOL ("enable_connect_protocol=1")
"""
import os
import socket
import struct
import sys

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

port, mode = int(sys.argv[1]), sys.argv[2]
sock = socket.create_connection(("127.0.0.1", port))
sock.settimeout(5)
connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
connection.initiate_connection()
sock.sendall(connection.data_to_send())
pending = []


def events():
    """The next batch of events (reading the socket as needed)."""
    while not pending:
        data = sock.recv(65536)
        if not data:
            raise SystemExit("the gateway closed the connection")
        pending.extend(connection.receive_data(data))
        sock.sendall(connection.data_to_send())
    batch = list(pending)
    pending.clear()
    return batch


def wait_for(kinds, stream=None):
    while True:
        for event in events():
            if isinstance(event, kinds) and (stream is None or getattr(event, "stream_id", None) == stream):
                return event
            if isinstance(event, h2.events.StreamReset) and event.stream_id == stream:
                raise SystemExit(f"stream {stream} reset: {event.error_code}")


def settle_settings():
    """Waits for the server's SETTINGS (before them, the library reads every setting as its default)."""
    while True:
        for event in events():
            if isinstance(event, h2.events.RemoteSettingsChanged):
                return


def connect(path="/chat"):
    stream = connection.get_next_available_stream_id()
    connection.send_headers(stream, [
        (":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
        (":path", path), (":authority", f"127.0.0.1:{port}"), ("sec-websocket-version", "13"),
    ])
    sock.sendall(connection.data_to_send())
    response = wait_for(h2.events.ResponseReceived, stream)
    return stream, int(dict(response.headers)[":status"])


def ws_frame(opcode, payload):
    """A client frame: final, masked (RFC 6455, 5.2)."""
    mask = os.urandom(4)
    header = bytes([0x80 | opcode])
    if len(payload) < 126:
        header += bytes([0x80 | len(payload)])
    elif len(payload) < 65536:
        header += bytes([0x80 | 126]) + struct.pack(">H", len(payload))
    else:
        header += bytes([0x80 | 127]) + struct.pack(">Q", len(payload))
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class Reader:
    """Server frames (unmasked) out of the stream's DATA."""

    def __init__(self, stream):
        self.stream, self.buffer = stream, b""

    def frame(self):
        while True:
            parsed = self.parse()
            if parsed:
                return parsed
            event = wait_for((h2.events.DataReceived, h2.events.StreamEnded), self.stream)
            if isinstance(event, h2.events.StreamEnded):
                raise SystemExit("the tunnel's stream ended early")
            connection.acknowledge_received_data(event.flow_controlled_length, self.stream)
            sock.sendall(connection.data_to_send())
            self.buffer += event.data

    def parse(self):
        if len(self.buffer) < 2:
            return None
        opcode, length, offset = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F, 2
        if length == 126:
            if len(self.buffer) < 4:
                return None
            length, offset = struct.unpack(">H", self.buffer[2:4])[0], 4
        elif length == 127:
            if len(self.buffer) < 10:
                return None
            length, offset = struct.unpack(">Q", self.buffer[2:10])[0], 10
        if len(self.buffer) < offset + length:
            return None
        payload = self.buffer[offset:offset + length]
        self.buffer = self.buffer[offset + length:]
        return opcode, payload


settle_settings()
if mode == "settings":
    print(f"enable_connect_protocol={connection.remote_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL)}")
elif mode == "handshakes":
    statuses = []
    for _ in range(int(sys.argv[3])):
        stream, status = connect()
        statuses.append(str(status))
        if status == 200:
            connection.send_data(stream, ws_frame(0x8, b"\x03\xe8"), end_stream=True)
            sock.sendall(connection.data_to_send())
    print(" ".join(statuses))
elif mode == "echo":
    stream, status = connect()
    if status != 200:
        raise SystemExit(f"status {status}")
    reader = Reader(stream)
    count = int(sys.argv[3])
    for index in range(count):
        message = (b"h2 message %d " % index) * (index % 50 + 1)
        connection.send_data(stream, ws_frame(0x1, message))
        sock.sendall(connection.data_to_send())
        opcode, payload = reader.frame()
        if opcode != 0x1 or payload != message:
            raise SystemExit(f"message {index} came back as {opcode} {payload[:40]!r}")
    connection.send_data(stream, ws_frame(0x8, b"\x03\xe8"))
    sock.sendall(connection.data_to_send())
    opcode, _ = reader.frame()
    if opcode != 0x8:
        raise SystemExit(f"expected the server's close, got opcode {opcode}")
    # The upstream closes after its close frame, and the gateway then ends the stream itself:
    # ending it here too is only needed if that has not arrived yet.
    try:
        connection.end_stream(stream)
        sock.sendall(connection.data_to_send())
    except h2.exceptions.StreamClosedError:
        pass
    print(f"echoed {count}")
else:
    raise SystemExit(f"unknown mode {mode}")
