import NIOHTTP1

/// What a message's `Connection` fields say, read in one scan of its fields: whether the
/// connection stays open, and which fields belong to this hop only and are not forwarded (the
/// hop-by-hop fields, and those `Connection` names, except the ones that frame or route).
struct ConnectionOptions: Equatable {
    private(set) var close = false
    private(set) var keepAlive = false
    /// Whether the message has an `Upgrade` field (a hop-by-hop one).
    private(set) var upgrade = false
    /// Whether an `Upgrade` field lists `websocket`, and a `Connection` field `upgrade`: both
    /// make a WebSocket handshake.
    private(set) var upgradeListsWebSocket = false
    private(set) var connectionListsUpgrade = false
    /// Whether `TE` lists `trailers`: the client reads trailers (gRPC's do), which an HTTP/2
    /// upstream is told again (the one `TE` HTTP/2 allows).
    private(set) var acceptsTrailers = false
    /// Whether any field is hop-by-hop or named by `Connection`: most messages have none, and
    /// then no field is looked at again.
    private(set) var removesAny = false
    /// Lower-cased names `Connection` lists (besides close and keep-alive), each once: looked
    /// up for every field of the message.
    private var named = ListedNames()

    /// No options yet: fields are then read one at a time (`read(name:value:)`).
    init() {}

    init(_ headers: HTTPHeaders) {
        for (name, value) in headers {
            name.withUTF8Bytes { name in
                value.withUTF8Bytes { value in read(name: name, value: value) }
            }
        }
    }

    /// Reads one field of the message (any field: only hop-by-hop ones say anything here).
    @inline(__always)
    mutating func read(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
        guard ForwardedHeaders.isHopByHop(name) else { return }
        removesAny = true
        switch name.count {
        case 2:
            // `TE`, the one hop-by-hop name of two bytes.
            if ASCIIText.lists(value, "trailers") { acceptsTrailers = true }
        case 7 where ASCIIText.equals(name, lowercased: "upgrade"):
            upgrade = true
            if WebSocketUpgrade.protocolName.withUTF8Bytes({ ASCIIText.lists(value, $0) }) { upgradeListsWebSocket = true }
        case 10 where ASCIIText.equals(name, lowercased: "connection"):
            readConnectionOptions(value)
        default:
            break
        }
    }

    private mutating func readConnectionOptions(_ value: UnsafeRawBufferPointer) {
        ASCIIText.forEachListElement(value) { option in
            if ASCIIText.equals(option, lowercased: "close") {
                close = true
            } else if ASCIIText.equals(option, lowercased: "keep-alive") {
                keepAlive = true
            } else if !ForwardedHeaders.isProtectedFromConnection(option) {
                if ASCIIText.equals(option, lowercased: "upgrade") { connectionListsUpgrade = true }
                // Only a token names a field (RFC 9110, 7.6.1); an option holding other bytes
                // names none, and obs-text would be kept in two spellings by the two ways fields
                // are read (the HTTP/1.1 parser's bytes, the Strings of an HTTP/2 head).
                if option.allSatisfy(ASCIIByteSet.token.contains) { named.insert(option) }
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
        return name.withUTF8Bytes(removes)
    }

    func removes(_ name: UnsafeRawBufferPointer) -> Bool {
        guard removesAny else { return false }
        if ForwardedHeaders.isHopByHop(name) { return true }
        return named.contains(name)
    }
}

/// The names a `Connection` field lists. A real message lists one or two, compared in place;
/// a head can list thousands (as many as `max_header_bytes` holds), and then they are kept in a
/// set, so that reading a message costs time in proportion to its bytes, never to its names
/// times its fields.
private struct ListedNames: Equatable {
    private static let fewNames = 8
    private var few: [String] = []
    private var many: Set<String> = []

    mutating func insert(_ name: UnsafeRawBufferPointer) {
        let lowered = String(decoding: name.lazy.map(ASCIIText.lowered), as: UTF8.self)
        if many.isEmpty {
            if few.contains(lowered) { return }
            if few.count < Self.fewNames {
                few.append(lowered)
                return
            }
            many = Set(few)
            few = []
        }
        many.insert(lowered)
    }

    func contains(_ name: UnsafeRawBufferPointer) -> Bool {
        if !many.isEmpty {
            return many.contains(String(decoding: name.lazy.map(ASCIIText.lowered), as: UTF8.self))
        }
        return !few.isEmpty && few.contains { listed in listed.withUTF8Bytes { ASCIIText.equals(name, lowercased: $0) } }
    }
}
