/// How a route names the client its limiters count against: one part, or several joined into
/// one key (`identifier = ["header:X-API-Key", "client_ip"]`).
public struct IdentifierRule: Sendable, Equatable {
    public enum Part: Sendable, Equatable {
        case clientIP
        /// One bucket shared by every client.
        case global
        /// `header:<Name>`: the header's value (sent more than once, it is refused).
        case header(String)
        /// `query:<name>`: the query parameter's value, percent-decoded (sent more than once, it is
        /// refused).
        case query(String)
        /// `jwt:<claim>`: a claim of a token that verified against `[jwt]`.
        case jwtClaim(String)
    }

    /// What a missing part (or a token that does not verify) means.
    public enum OnMissing: Sendable, Equatable {
        /// The whole identifier becomes the client IP.
        case clientIP
        /// 401 for a token, 400 for a header or query part.
        case reject
    }

    public var parts: [Part]
    public var onMissing: OnMissing

    public init(parts: [Part], onMissing: OnMissing = .clientIP) {
        self.parts = parts
        self.onMissing = onMissing
    }

    public static let clientIP = IdentifierRule(parts: [.clientIP])
    public static let global = IdentifierRule(parts: [.global])

    public static func header(name: String, rejectWhenMissing: Bool) -> IdentifierRule {
        IdentifierRule(parts: [.header(name)], onMissing: rejectWhenMissing ? .reject : .clientIP)
    }

    /// The fields the identity is read from, in lower case: its header parts, and `tokenField`
    /// when a part is a token's claim.
    func fieldNames(tokenField: String?) -> [String] {
        var names: [String] = []
        for part in parts {
            switch part {
            case .header(let name): names.append(name.lowercased())
            case .jwtClaim: if let tokenField { names.append(tokenField.lowercased()) }
            case .clientIP, .global, .query: break
            }
        }
        return names
    }

    public var usesJWT: Bool {
        parts.contains { if case .jwtClaim = $0 { return true } else { return false } }
    }

    /// Reads `client_ip`, `global`, `header:<Name>`, `query:<name>` or `jwt:<claim>`; nil with a
    /// reason otherwise.
    static func part(_ text: String) -> Result<Part, PartError> {
        switch text {
        case "client_ip": return .success(.clientIP)
        case "global": return .success(.global)
        default: break
        }
        guard let colon = text.firstIndex(of: ":") else { return .failure(.unknownKind) }
        let kind = text[..<colon]
        let name = text[text.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        switch kind {
        case "header":
            guard !name.isEmpty, name.utf8.allSatisfy(HTTP1HeadParser.isTokenByte) else { return .failure(.badName("header")) }
            return .success(.header(name))
        case "query":
            guard !name.isEmpty, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "&") && $0 != UInt8(ascii: "=") })
            else { return .failure(.badName("query parameter")) }
            return .success(.query(name))
        case "jwt":
            guard !name.isEmpty, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return .failure(.badName("claim")) }
            return .success(.jwtClaim(name))
        default:
            return .failure(.unknownKind)
        }
    }

    enum PartError: Error, Equatable {
        case unknownKind
        case badName(String)
    }
}
