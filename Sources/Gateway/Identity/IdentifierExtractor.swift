import Crypto
import NIOHTTP1

/// The identifier a route's limiters count against, per the route's `identifier` rule.
public enum IdentifierExtractor {
    public enum Outcome: Equatable {
        case identifier(String)
        /// A header or query part is missing and the route rejects: 400, naming what is missing.
        case missingPart(String)
        /// The token is missing or does not verify and the route rejects: 401. A token header
        /// sent more than once is answered so whatever the route says about a missing one.
        case unverifiedToken
        /// A header or query part is sent more than once: 400, naming it, whatever the route says
        /// about a missing one. Which of the values an upstream acts on (Starlette's query reads
        /// the last, its headers the first; a CGI upstream joins them) is not ours to guess, and a
        /// fall-back to the client IP would count a client the upstream knows by one of the values
        /// by its address instead.
        case repeatedPart(String)
    }

    /// Longer identifiers are replaced by their digest, so that a client cannot make keys (in
    /// memory or in Redis) grow with the size of its header.
    static let maxIdentifierBytes = 256

    /// - Parameters:
    ///   - query: the query the upstream gets (RequestPath's), for `query:` parts.
    ///   - clientIP: the client's canonical address, computed only when needed.
    ///   - now: Unix seconds, for a token's `exp` and `nbf`.
    ///   - tokens: the loop's verified tokens; nil verifies every token.
    static func identify(
        rule: IdentifierRule,
        request: ClientRequest,
        query: Substring,
        verifier: TokenVerifier?,
        tokens: VerifiedTokenCache? = nil,
        now: @autoclosure () -> Double,
        clientIP: () -> String
    ) -> Outcome {
        if rule.parts.count == 1, let only = rule.parts.first {
            switch value(of: only, request: request, query: query, verifier: verifier, tokens: tokens, now: now, clientIP: clientIP) {
            case .success(let text): return .identifier(bounded(text))
            case .failure(let missing): return fallback(rule, missing, clientIP: clientIP)
            }
        }
        var joined = ""
        for (index, part) in rule.parts.enumerated() {
            switch value(of: part, request: request, query: query, verifier: verifier, tokens: tokens, now: now, clientIP: clientIP) {
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
        case repeatedPart(String)
        case repeatedToken
    }

    private static func fallback(_ rule: IdentifierRule, _ missing: Missing, clientIP: () -> String) -> Outcome {
        switch (rule.onMissing, missing) {
        case (_, .repeatedPart(let what)): return .repeatedPart(what)
        case (_, .repeatedToken): return .unverifiedToken
        case (.clientIP, _): return .identifier(clientIP())
        case (.reject, .part(let what)): return .missingPart(what)
        case (.reject, .token): return .unverifiedToken
        }
    }

    private static func value(
        of part: IdentifierRule.Part,
        request: ClientRequest,
        query: Substring,
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
            switch onlyValue(of: name, in: request.headers) {
            case .none: return .failure(.part("The \(name) header"))
            case .repeated: return .failure(.repeatedPart("The \(name) header"))
            case .one(let value): return value.isEmpty ? .failure(.part("The \(name) header")) : .success(value)
            }
        case .query(let name):
            switch QueryParameter.only(name, inQuery: query) {
            case .none: return .failure(.part("The \(name) query parameter"))
            case .repeated: return .failure(.repeatedPart("The \(name) query parameter"))
            case .one(let value): return value.isEmpty ? .failure(.part("The \(name) query parameter")) : .success(value)
            }
        case .jwtClaim(let claim):
            guard let verifier else { return .failure(.token) }
            let token: String
            switch onlyValue(of: verifier.settings.tokenField, in: request.headers) {
            case .none: return .failure(.token)
            case .repeated: return .failure(.repeatedToken)
            case .one(let raw):
                guard let found = verifier.token(fromField: raw) else { return .failure(.token) }
                token = found
            }
            let verified = tokens.map { $0.claims(token, verifier: verifier, now: now()) } ?? verifier.verifiedClaims(token, now: now())
            guard let value = verified?.values[claim]?.identifier
            else { return .failure(.token) }
            return .success(value)
        }
    }

    /// The one value of the field `name` (any case) in `headers`.
    private static func onlyValue(of name: String, in headers: ClientFields) -> SingleValue {
        let values = headers.values(named: name)
        switch values.count {
        case 0: return .none
        case 1: return .one(values[0])
        default: return .repeated
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
