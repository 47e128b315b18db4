/// A parsed `redis://[user][:password]@host:port/db` or `rediss://...` address.
public struct RedisURL: Sendable, Equatable {
    public var useTLS: Bool
    public var host: String
    public var port: Int
    public var username: String?
    public var password: String?
    public var database: Int?

    public init(
        useTLS: Bool = false,
        host: String,
        port: Int = 6379,
        username: String? = nil,
        password: String? = nil,
        database: Int? = nil
    ) {
        self.useTLS = useTLS
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
    }

    /// The address with any password masked, for logs and error messages.
    public var redacted: String {
        let scheme = useTLS ? "rediss" : "redis"
        let user = username ?? ""
        let credentials = password == nil ? (user.isEmpty ? "" : "\(user)@") : "\(user):***@"
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return "\(scheme)://\(credentials)\(hostPart):\(port)/\(database ?? 0)"
    }

    public enum ParseFailure: Error, Equatable, CustomStringConvertible {
        case scheme
        case host
        case port(String)
        case database(String)

        public var description: String {
            switch self {
            case .scheme: return "expected a URL starting with redis:// or rediss://"
            case .host: return "the URL names no host"
            case .port(let text): return "\"\(text)\" is not a port number (1-65535)"
            case .database(let text): return "\"\(text)\" is not a database index"
            }
        }
    }

    public static func parse(_ text: String) throws(ParseFailure) -> RedisURL {
        let useTLS: Bool
        var rest: Substring
        if text.hasPrefix("redis://") {
            useTLS = false
            rest = text.dropFirst("redis://".count)
        } else if text.hasPrefix("rediss://") {
            useTLS = true
            rest = text.dropFirst("rediss://".count)
        } else {
            throw .scheme
        }
        if let query = rest.firstIndex(of: "?") { rest = rest[..<query] }

        var username: String?
        var password: String?
        // The password may itself contain '@': the host part begins after the last one.
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let user = credentials[..<colon]
                username = user.isEmpty ? nil : percentDecoded(user)
                password = percentDecoded(credentials[credentials.index(after: colon)...])
            } else if !credentials.isEmpty {
                username = percentDecoded(credentials)
            }
        }

        var database: Int?
        if let slash = rest.firstIndex(of: "/") {
            let dbText = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !dbText.isEmpty {
                guard let index = Int(dbText), index >= 0 else { throw .database(String(dbText)) }
                database = index
            }
        }

        var host: Substring
        var port = 6379
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw .host }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") { port = try parsePort(after.dropFirst()) }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            port = try parsePort(rest[rest.index(after: colon)...])
        } else {
            host = rest
        }
        guard !host.isEmpty else { throw .host }
        return RedisURL(
            useTLS: useTLS,
            host: String(host),
            port: port,
            username: username,
            password: password,
            database: database
        )
    }

    private static func parsePort(_ text: Substring) throws(ParseFailure) -> Int {
        guard let port = Int(text), (1...65535).contains(port) else { throw .port(String(text)) }
        return port
    }

    private static func percentDecoded(_ text: Substring) -> String {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        var index = text.utf8.startIndex
        let utf8 = text.utf8
        while index < utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "%"),
                let high = utf8.index(index, offsetBy: 1, limitedBy: utf8.endIndex), high < utf8.endIndex,
                let low = utf8.index(index, offsetBy: 2, limitedBy: utf8.endIndex), low < utf8.endIndex,
                let value = UInt8(String(decoding: [utf8[high], utf8[low]], as: UTF8.self), radix: 16)
            {
                bytes.append(value)
                index = utf8.index(after: low)
            } else {
                bytes.append(byte)
                index = utf8.index(after: index)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
