import NIOHTTP1

/// What a message's `Connection` fields say, read in one scan of its fields: whether the
/// connection stays open, and which fields belong to this hop only and are not forwarded (the
/// hop-by-hop fields, and those `Connection` names, except the ones that frame or route).
struct ConnectionOptions {
    private(set) var close = false
    private(set) var keepAlive = false
    /// Whether the message has an `Upgrade` field (a hop-by-hop one).
    private(set) var upgrade = false
    /// Whether `TE` lists `trailers`: the client reads trailers (gRPC's do), which an HTTP/2
    /// upstream is told again (the one `TE` HTTP/2 allows).
    private(set) var acceptsTrailers = false
    /// Whether any field is hop-by-hop or named by `Connection`: most messages have none, and
    /// then no field is looked at again.
    private(set) var removesAny = false
    /// Lower-cased names `Connection` lists (besides close and keep-alive).
    private var named: [Substring] = []

    init(_ headers: HTTPHeaders) {
        for (name, value) in headers where ForwardedHeaders.isHopByHop(name) {
            removesAny = true
            if name.utf8.count == 7 && name.asciiCaseInsensitiveEquals("upgrade") { upgrade = true }
            if name.utf8.count == 2 && value.lowercased().split(separator: ",").contains(where: { $0.trimmingSpaces == "trailers" }) {
                acceptsTrailers = true
            }
            guard name.utf8.count == 10, name.asciiCaseInsensitiveEquals("connection") else { continue }
            for token in value.lowercased().split(separator: ",") {
                let option = token.trimmingSpaces
                switch option {
                case "close": close = true
                case "keep-alive": keepAlive = true
                case _ where ForwardedHeaders.protectedFromConnection.contains(where: { option == $0 }): break
                case _ where !option.isEmpty: named.append(option)
                default: break
                }
            }
        }
    }

    /// Whether the connection stays open after this message (RFC 9112, 9.3): HTTP/1.1 unless
    /// `close`; HTTP/1.0 only with `keep-alive`.
    func keepsAlive(_ version: HTTPVersion) -> Bool {
        if close { return false }
        return version.major > 1 || version.minor >= 1 || keepAlive
    }

    /// Whether `name` stays on this hop.
    func removes(_ name: String) -> Bool {
        guard removesAny else { return false }
        if ForwardedHeaders.isHopByHop(name) { return true }
        return !named.isEmpty && named.contains { name.asciiCaseInsensitiveEquals(String($0)) }
    }
}
