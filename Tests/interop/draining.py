"""What the stalled clients of these tests share: connecting (over TLS or not), and reading a
socket to its end."""
import socket
import ssl
import sys
import time


def connect(port, alpn=None, receive_buffer=None):
    """Connects to 127.0.0.1:`port`, with a receive buffer of `receive_buffer` bytes if given (a
    small one: a client that stops reading stops the server's writes soon). With `alpn`, over TLS
    offering that one protocol (the certificate not checked: the tests' own). Returns the
    socket."""
    sock = socket.socket()
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect(("127.0.0.1", port))
    if alpn is None:
        return sock
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols([alpn])
    sock = context.wrap_socket(sock, server_hostname="localhost")
    if sock.selected_alpn_protocol() != alpn:
        sys.exit("the server chose %r, not %r" % (sock.selected_alpn_protocol(), alpn))
    return sock


def read_until_close(sock, seconds):
    """Reads `sock` until the peer closes or resets it, or `seconds` pass.
    Returns (bytes received, whether it was closed)."""
    sock.settimeout(seconds)
    received = 0
    start = time.monotonic()
    try:
        while time.monotonic() - start < seconds:
            data = sock.recv(1 << 20)
            if not data:
                return received, True
            received += len(data)
    except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
        return received, True
    except OSError:
        pass
    return received, False
