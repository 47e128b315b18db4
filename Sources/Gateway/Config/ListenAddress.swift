import RateSync

/// `host:port` or `[v6]:port`, as written in `listen` settings.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init?(_ text: String) {
        // Port 0 asks the kernel for a free port, which tests use.
        guard let (host, port) = HostPort.split(text) else { return nil }
        self.host = host
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
