"""What the stalled clients of these tests share: reading a socket to its end."""
import time


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
    except ConnectionResetError:
        return received, True
    except OSError:
        pass
    return received, False
