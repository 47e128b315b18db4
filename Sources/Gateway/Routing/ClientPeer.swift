import NIOCore

/// The address a client connection comes from, parsed once per connection: the streams of an
/// HTTP/2 connection, and the requests of a kept-alive one, all share it.
struct ClientPeer {
    /// Nil for an address that is not IP (a Unix socket).
    let address: IPAddress?
    /// Its canonical text, most requests' identifier and what X-Forwarded-For gets.
    let text: String

    init(_ channel: any Channel) {
        address = channel.remoteAddress?.ipAddress.flatMap(IPAddress.init)
        text = address?.description ?? "unknown"
    }
}
