import Crypto
import NIOHTTP1

/// The identifier a route's limiters count against, per the route's `identifier` rule.
public enum IdentifierExtractor {
    public enum Outcome: Equatable {
        case identifier(String)
        /// A header or query part is missing and the route rejects: 400, naming what is missing.
        case missingPart(String)
        /// The token is missing or does not verify and the route rejects: 401.
        case unverifiedToken
    }

    /// Longer identifiers are replaced by their digest, so that a client cannot make keys (in
    /// memory or in Redis) grow with the size of its header.
    static let maxIdentifierBytes = 256

    /// - Parameters:
    ///   - clientIP: the client's canonical address, computed only when needed.
    ///   - now: Unix seconds, for a token's `exp` and `nbf`.
    ///   - tokens: the loop's verified tokens; nil verifies every token.
    static func identify(
        rule: IdentifierRule,
        head: HTTPRequestHead,
        verifier: TokenVerifier?,
        tokens: VerifiedTokenCache? = nil,
        now: @autoclosure () -> Double,
        clientIP: () -> String
    ) -> Outcome {
        if rule.parts.count == 1, let only = rule.parts.first {
            switch value(of: only, head: head, verifier: verifier, tokens: tokens, now: now, clientIP: clientIP) {
            case .success(let text): return .identifier(bounded(text))
            case .failure(let missing): return fallback(rule, missing, clientIP: clientIP)
            }
        }
        var joined = ""
        for (index, part) in rule.parts.enumerated() {
            switch value(of: part, head: head, verifier: verifier, tokens: tokens, now: now, clientIP: clientIP) {
            case .success(let text):
                if index > 0 { joined += "|" }
                joined += escapedForJoining(text)
            case .failure(let missing):
                return fallback(rule, missing, clientIP: clientIP)
            }
        }
        return .identifier(bounded(joined))
    }

    private enum Missing: Error {
        case part(String)
        case token
    }

    private static func fallback(_ rule: IdentifierRule, _ missing: Missing, clientIP: () -> String) -> Outcome {
        switch (rule.onMissing, missing) {
        case (.clientIP, _): return .identifier(clientIP())
        case (.reject, .part(let what)): return .missingPart(what)
        case (.reject, .token): return .unverifiedToken
        }
    }

    private static func value(
        of part: IdentifierRule.Part,
        head: HTTPRequestHead,
        verifier: TokenVerifier?,
        tokens: VerifiedTokenCache?,
        now: () -> Double,
        clientIP: () -> String
    ) -> Result<String, Missing> {
        switch part {
        case .global:
            return .success("global")
        case .clientIP:
            return .success(clientIP())
        case .header(let name):
            guard let value = head.headers.first(name: name), !value.isEmpty else { return .failure(.part("The \(name) header")) }
            return .success(value)
        case .query(let name):
            guard let value = QueryParameter.first(name, in: head.uri) else { return .failure(.part("The \(name) query parameter")) }
            return .success(value)
        case .jwtClaim(let claim):
            guard let verifier, let token = verifier.token(in: { head.headers[$0] }) else {
                return .failure(.token)
            }
            let verified = tokens.map { $0.claims(token, verifier: verifier, now: now()) } ?? verifier.verifiedClaims(token, now: now())
            guard let value = verified?.values[claim]?.identifier
            else { return .failure(.token) }
            return .success(value)
        }
    }

    /// A part of a composite identifier, with the joining character escaped, so that two
    /// different sets of parts can never join into the same key.
    private static func escapedForJoining(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 == UInt8(ascii: "|") || $0 == UInt8(ascii: "%") }) else { return text }
        return text.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "|", with: "%7C")
    }

    static func bounded(_ identifier: String) -> String {
        guard identifier.utf8.count > maxIdentifierBytes else { return identifier }
        let digest = SHA256.hash(data: Array(identifier.utf8))
        return "sha256:" + digest.map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}
