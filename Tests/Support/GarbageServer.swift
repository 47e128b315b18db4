import Foundation

/// A TCP server on a free port that answers anything with the same bytes: a broken peer.
public final class GarbageServer {
    public let port: Int
    private let process: ChildProcess

    public init(reply: String) throws {
        port = try unusedPort()
        let script = """
            import socket, sys
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", \(port))); s.listen(16); print("ready", flush=True)
            while True:
                c, _ = s.accept()
                try:
                    c.recv(65536); c.sendall(\(Self.pythonBytes(reply)))
                except OSError:
                    pass
            """
        process = try ChildProcess(URL(fileURLWithPath: "/usr/bin/env"), ["python3", "-c", script])
        _ = try process.waitForLine(containing: "ready")
    }

    private static func pythonBytes(_ text: String) -> String {
        "bytes([" + text.utf8.map(String.init).joined(separator: ",") + "])"
    }

    public func stop() { process.stop() }
    deinit { stop() }
}
