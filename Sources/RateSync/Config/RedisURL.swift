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
        let authority: URLAuthority
        do {
            authority = try URLAuthority.parse(rest, defaultPort: 6379)
        } catch {
            switch error {
            case .host: throw .host
            case .port(let text): throw .port(text)
            }
        }
        var database: Int?
        if !authority.path.isEmpty {
            guard let index = Int(authority.path), index >= 0 else { throw .database(String(authority.path)) }
            database = index
        }
        return RedisURL(
            useTLS: useTLS,
            host: authority.host,
            port: authority.port,
            username: authority.username,
            password: authority.password,
            database: database
        )
    }
}
