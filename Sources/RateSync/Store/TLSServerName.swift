import NIOCore

/// The name a TLS client sends as SNI for a host: the host itself, or nil for an IP address
/// literal, which SNI must not carry (RFC 6066, section 3).
public enum TLSServerName {
    public static func forHost(_ host: String) -> String? {
        (try? SocketAddress(ipAddress: host, port: 0)) == nil ? host : nil
    }
}
