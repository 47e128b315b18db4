/// Finds the client's address: the peer, unless the peer is a trusted proxy; then
/// `X-Forwarded-For` is walked from the right (the entries nearest us, added by proxies we trust)
/// and the first address that is not a trusted proxy is the client. Entries further left are
/// whatever the client chose to send and are never believed.
public struct ClientIPResolver: Sendable {
    public let trustedNetworks: [IPNetwork]

    public init(trustedNetworks: [IPNetwork] = []) {
        self.trustedNetworks = trustedNetworks
    }

    public func isTrusted(_ address: IPAddress) -> Bool {
        trustedNetworks.contains { $0.contains(address) }
    }

    /// - Parameters:
    ///   - peer: the TCP peer's address.
    ///   - forwardedFor: every `X-Forwarded-For` header value, in the order received.
    public func resolve(peer: IPAddress, forwardedFor: [String]) -> IPAddress {
        guard isTrusted(peer), !forwardedFor.isEmpty else { return peer }
        var nearest = peer
        for headerValue in forwardedFor.reversed() {
            for entry in headerValue.split(separator: ",").reversed() {
                let trimmed = entry.trimmingSpaces
                guard let address = IPAddress(Self.strippingPort(trimmed)) else {
                    // Garbage where an address should be: everything left of it is untrustworthy,
                    // so the nearest address we could vouch for is the answer.
                    return nearest
                }
                if !isTrusted(address) { return address }
                nearest = address
            }
        }
        return nearest
    }

    /// `203.0.113.7:4711` and `[2001:db8::1]:4711` carry ports some proxies add.
    static func strippingPort(_ entry: Substring) -> Substring {
        if entry.hasPrefix("["), let close = entry.firstIndex(of: "]") {
            return entry[entry.index(after: entry.startIndex)..<close]
        }
        if let colon = entry.firstIndex(of: ":"), entry.lastIndex(of: ":") == colon {
            return entry[..<colon]
        }
        return entry
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let start = firstIndex(where: { !isSpace($0) }), let end = lastIndex(where: { !isSpace($0) }) else {
            return self[endIndex...]
        }
        return self[start...end]
    }
}
