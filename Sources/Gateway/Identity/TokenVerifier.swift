import Dispatch
import Foundation
import JWTKit
import NIOConcurrencyHelpers

/// Verifies bearer tokens against `[jwt]`: the signature with a configured algorithm and key
/// (RS256 and ES256 by the token's `kid` in the JWKS, HS256 with the shared secret), then `iss`,
/// `aud`, `exp` and `nbf` (with a leeway). A token that fails any check is no identity.
///
/// Keys are turned into jwt-kit algorithms once, when the configuration loads, so that a request
/// verifies synchronously on its event loop (jwt-kit's own verify is asynchronous, on an actor).
public final class TokenVerifier: Sendable {
    struct Key: Sendable {
        let algorithm: String
        let verifier: any JWTAlgorithm
    }

    /// Clock skew tolerated on `exp` and `nbf`.
    static let leewaySeconds: Double = 30
    /// Longer tokens are not parsed: no identity needs them, and parsing costs their length.
    static let maxTokenBytes = 16 * 1024

    let settings: GatewayConfig.JWTSettings
    private let keys: [String: Key]
    private let hmac: (any JWTAlgorithm)?
    private let parser = DefaultJWTParser()

    init(settings: GatewayConfig.JWTSettings, keys: [String: Key], hmac: (any JWTAlgorithm)?) {
        self.settings = settings
        self.keys = keys
        self.hmac = hmac
    }

    /// The token in the one value of the request's token field (`jwt_header`'s, or
    /// `Authorization: Bearer <token>`). A repeated field is refused before this (see
    /// IdentifierExtractor): which of its values an upstream would read is not ours to guess.
    func token(fromField raw: String) -> String? {
        Self.token(from: raw, bearerRequired: settings.header == nil)
    }

    /// The token of `Bearer <token>` (the scheme in any case), or of a bare value where the
    /// scheme is optional; surrounding spaces and tabs ignored. Worked on bytes: Foundation's
    /// trimming walks a token of hundreds of bytes as UTF-16, per request.
    static func token(from raw: String, bearerRequired: Bool) -> String? {
        let bytes = raw.utf8
        let isBlank = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        guard var start = bytes.firstIndex(where: { !isBlank($0) }) else { return nil }
        let scheme = "bearer ".utf8
        let hasScheme = bytes[start...].count > scheme.count
            && zip(bytes[start...], scheme).allSatisfy { $0 | 0x20 == $1 || ($1 == UInt8(ascii: " ") && isBlank($0)) }
        if hasScheme {
            start = bytes.index(start, offsetBy: scheme.count)
        } else if bearerRequired {
            return nil
        }
        guard let first = bytes[start...].firstIndex(where: { !isBlank($0) }),
            let last = bytes[first...].lastIndex(where: { !isBlank($0) })
        else { return nil }
        return String(decoding: bytes[first...last], as: UTF8.self)
    }

    /// The token's claims when it verifies at `now` (Unix seconds); nil otherwise.
    func verifiedClaims(_ token: String, now: Double) -> TokenClaims? {
        let bytes = Array(token.utf8)
        guard bytes.count <= Self.maxTokenBytes,
            let parsed = try? parser.parse(bytes, as: TokenClaims.self),
            let algorithm = parsed.header.alg, settings.algorithms.contains(algorithm)
        else { return nil }
        let verifier: any JWTAlgorithm
        if algorithm == "HS256" {
            guard let hmac else { return nil }
            verifier = hmac
        } else {
            guard let kid = parsed.header.kid, let key = keys[kid], key.algorithm == algorithm else { return nil }
            verifier = key.verifier
        }
        guard let lastDot = bytes.lastIndex(of: UInt8(ascii: ".")),
            (try? verifier.verify(parsed.signature, signs: bytes[..<lastDot])) == true,
            Self.namesEachMemberOnce(bytes)
        else { return nil }
        return claimsHold(parsed.payload, now: now) ? parsed.payload : nil
    }

    /// Whether the token's header and claims each name every member once (JSONMemberNames says
    /// why a repeated name is refused). Paid once per token a loop verifies, not per request.
    private static func namesEachMemberOnce(_ token: [UInt8]) -> Bool {
        let segments = token.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard segments.count == 3 else { return false }
        return segments[0..<2].allSatisfy { segment in
            var text = String(decoding: segment, as: UTF8.self).replacingOccurrences(of: "-", with: "+")
                .replacingOccurrences(of: "_", with: "/")
            text += String(repeating: "=", count: (4 - text.utf8.count % 4) % 4)
            guard let json = Data(base64Encoded: text) else { return false }
            return JSONMemberNames.areUnique(Array(json))
        }
    }

    private func claimsHold(_ claims: TokenClaims, now: Double) -> Bool {
        if let exp = claims.values["exp"] {
            guard let seconds = exp.seconds, now < seconds + Self.leewaySeconds else { return false }
        }
        if let nbf = claims.values["nbf"] {
            guard let seconds = nbf.seconds, now + Self.leewaySeconds >= seconds else { return false }
        }
        if let issuer = settings.issuer {
            guard case .text(issuer)? = claims.values["iss"] else { return false }
        }
        if let audience = settings.audience {
            switch claims.values["aud"] {
            case .text(let single)?: guard single == audience else { return false }
            case .texts(let several)?: guard several.contains(audience) else { return false }
            default: return false
            }
        }
        return true
    }
}

extension TokenVerifier {
    /// Reads the JWKS file and the HS256 secret into verifiers; every key that cannot serve a
    /// configured algorithm is a problem, so a typo is caught at load and not at the first token.
    static func load(_ settings: GatewayConfig.JWTSettings) -> Result<TokenVerifier, ConfigProblemList> {
        var problems: [String] = []
        var jwks: JWKS?
        if let path = settings.jwksPath {
            if let data = FileManager.default.contents(atPath: path) {
                do {
                    jwks = try JSONDecoder().decode(JWKS.self, from: data)
                } catch {
                    problems.append("jwks_file: \(path) is not a JSON Web Key Set: \(error)")
                }
            } else {
                problems.append("jwks_file: cannot read \(path)")
            }
        }
        var wanted: [(kid: String, algorithm: String, jwk: JWK)] = []
        for (index, jwk) in (jwks?.keys ?? []).enumerated() {
            guard let kid = jwk.keyIdentifier?.string else {
                problems.append("jwks_file: key \(index) has no \"kid\" (tokens find their key by kid)")
                continue
            }
            let algorithm = jwk.algorithm?.rawValue ?? (jwk.keyType.rawValue == "RSA" ? "RS256" : jwk.keyType.rawValue == "EC" ? "ES256" : "")
            // Keys for algorithms the gateway does not accept are left out, not refused: a JWKS
            // is often shared with services that use more algorithms.
            guard algorithm == "RS256" || algorithm == "ES256", settings.algorithms.contains(algorithm) else { continue }
            wanted.append((kid, algorithm, jwk))
        }
        // jwt-kit asserts on a shorter HMAC key (RFC 7518, 3.2); the parser refuses one first.
        let secret = settings.hs256Secret.flatMap { $0.utf8.count >= 32 ? $0 : nil }
        let toLoad = wanted
        let loaded: Result<([String: Key], (any JWTAlgorithm)?), any Error> = waitForAsync {
            let collection = JWTKeyCollection()
            var keys: [String: Key] = [:]
            for entry in toLoad {
                try await collection.add(jwk: entry.jwk)
                let verifier = try await collection.getKey(for: JWKIdentifier(string: entry.kid), alg: entry.algorithm)
                keys[entry.kid] = Key(algorithm: entry.algorithm, verifier: verifier)
            }
            var hmac: (any JWTAlgorithm)?
            if let secret {
                let kid = JWKIdentifier(string: "gateway-hs256-secret")
                await collection.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256, kid: kid)
                hmac = try await collection.getKey(for: kid, alg: "HS256")
            }
            return (keys, hmac)
        }
        switch loaded {
        case .success(let (keys, hmac)):
            for key in keys.values where key.verifier.name != key.algorithm {
                problems.append("jwks_file: a key meant for \(key.algorithm) loaded as \(key.verifier.name)")
            }
            guard problems.isEmpty else { return .failure(ConfigProblemList(problems)) }
            return .success(TokenVerifier(settings: settings, keys: keys, hmac: hmac))
        case .failure(let error):
            problems.append("jwks_file: a key cannot be used: \(error)")
            return .failure(ConfigProblemList(problems))
        }
    }

    /// Runs jwt-kit's asynchronous key setup to completion from synchronous code. Only ever
    /// called while a configuration loads (at start and on SIGHUP), never on an event loop.
    private static func waitForAsync<T: Sendable>(
        _ body: @escaping @Sendable () async throws -> T
    ) -> Result<T, any Error> {
        let outcome = NIOLockedValueBox<Result<T, any Error>?>(nil)
        let finished = DispatchSemaphore(value: 0)
        Task.detached {
            do {
                let value = try await body()
                outcome.withLockedValue { $0 = .success(value) }
            } catch {
                outcome.withLockedValue { $0 = .failure(error) }
            }
            finished.signal()
        }
        finished.wait()
        return outcome.withLockedValue { $0! }
    }
}

/// Messages about one table, to be reported under its path.
struct ConfigProblemList: Error {
    let messages: [String]
    init(_ messages: [String]) { self.messages = messages }
}
