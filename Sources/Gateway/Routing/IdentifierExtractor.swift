import NIOHTTP1

/// The identifier a route's limiters count against, per the route's `identifier` rule.
public enum IdentifierExtractor {
    public enum Outcome: Equatable {
        case identifier(String)
        /// `header:<Name>` with `on_missing_header = "reject"` and no such header.
        case missingHeader(String)
    }

    /// - Parameter clientIP: the client's canonical address, computed only when needed.
    public static func identify(
        rule: IdentifierRule,
        headers: HTTPHeaders,
        clientIP: () -> String
    ) -> Outcome {
        switch rule {
        case .global:
            return .identifier("global")
        case .clientIP:
            return .identifier(clientIP())
        case .header(let name, let rejectWhenMissing):
            if let value = headers.first(name: name), !value.isEmpty {
                return .identifier(value)
            }
            return rejectWhenMissing ? .missingHeader(name) : .identifier(clientIP())
        }
    }
}
