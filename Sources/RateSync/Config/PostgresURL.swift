/// A parsed `postgresql://[user[:password]@]host[:port]/database[?sslmode=...]` address (also
/// `postgres://`), as rate-sync's Postgres engine takes it.
public struct PostgresURL: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String?
    /// `sslmode=require` (or `verify-ca`, `verify-full`): TLS, or no connection.
    public var requireTLS: Bool

    public init(host: String, port: Int = 5432, username: String = "postgres", password: String? = nil, database: String? = nil, requireTLS: Bool = false) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.requireTLS = requireTLS
    }

    /// The address with any password masked, for logs and error messages.
    public var redacted: String {
        let credentials = password == nil ? "\(username)@" : "\(username):***@"
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return "postgresql://\(credentials)\(hostPart):\(port)/\(database ?? "")"
    }

    public enum ParseFailure: Error, Equatable, CustomStringConvertible {
        case scheme
        case host
        case port(String)
        case sslMode(String)

        public var description: String {
            switch self {
            case .scheme: return "expected a URL starting with postgresql:// or postgres://"
            case .host: return "the URL names no host"
            case .port(let text): return "\"\(text)\" is not a port number (1-65535)"
            case .sslMode(let text): return "sslmode \"\(text)\" is not one of disable, allow, prefer, require, verify-ca, verify-full"
            }
        }
    }

    public static func parse(_ text: String) throws(ParseFailure) -> PostgresURL {
        var rest: Substring
        if text.hasPrefix("postgresql://") {
            rest = text.dropFirst("postgresql://".count)
        } else if text.hasPrefix("postgres://") {
            rest = text.dropFirst("postgres://".count)
        } else {
            throw .scheme
        }
        var requireTLS = false
        if let question = rest.firstIndex(of: "?") {
            for pair in rest[rest.index(after: question)...].split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.first == "sslmode", parts.count == 2 else { continue }
                switch parts[1] {
                case "disable", "allow", "prefer": requireTLS = false
                case "require", "verify-ca", "verify-full": requireTLS = true
                default: throw .sslMode(String(parts[1]))
                }
            }
            rest = rest[..<question]
        }
        let authority: URLAuthority
        do {
            authority = try URLAuthority.parse(rest, defaultPort: 5432)
        } catch {
            switch error {
            case .host: throw .host
            case .port(let text): throw .port(text)
            }
        }
        return PostgresURL(
            host: authority.host,
            port: authority.port,
            username: authority.username ?? "postgres",
            password: authority.password,
            database: authority.path.isEmpty ? nil : URLAuthority.percentDecoded(authority.path),
            requireTLS: requireTLS
        )
    }
}
