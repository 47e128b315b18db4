import CryptoExtras
import Foundation
import JWTKit

/// Claims a test token carries; nil fields are left out.
public struct TestClaims: JWTPayload {
    public var sub: String?
    public var iss: String?
    public var aud: String?
    public var exp: Int?
    public var nbf: Int?
    public var tenant: String?

    public init(sub: String? = nil, iss: String? = nil, aud: String? = nil, exp: Int? = nil, nbf: Int? = nil, tenant: String? = nil) {
        self.sub = sub
        self.iss = iss
        self.aud = aud
        self.exp = exp
        self.nbf = nbf
        self.tenant = tenant
    }

    public func verify(using algorithm: some JWTAlgorithm) async throws {}

    public static var now: Int { Int(Date().timeIntervalSince1970) }
}

/// An issuer of real signed tokens: a fresh RSA key, a fresh P-256 key and an HMAC secret, and
/// the JWKS that publishes the two public keys.
public final class TestTokenIssuer: Sendable {
    public let hmacSecret: String
    private let keys: JWTKeyCollection
    private let rsaPublic: JWTKit.Insecure.RSA.PublicKey
    private let ecPublic: ES256PublicKey

    public init(hmacSecret: String = "test-secret-\(UUID().uuidString)") async throws {
        self.hmacSecret = hmacSecret
        let rsa = try JWTKit.Insecure.RSA.PrivateKey(backing: _RSA.Signing.PrivateKey(keySize: .bits2048))
        let ec = ES256PrivateKey()
        rsaPublic = rsa.publicKey
        ecPublic = ec.publicKey
        keys = JWTKeyCollection()
        await keys.add(rsa: rsa, digestAlgorithm: .sha256, kid: "rsa-1")
        // The same key under a second name, as after a key rotation that renames it.
        await keys.add(rsa: rsa, digestAlgorithm: .sha256, kid: "rsa-2")
        await keys.add(ecdsa: ec, kid: "ec-1")
        await keys.add(hmac: HMACKey(from: hmacSecret), digestAlgorithm: .sha256, kid: "hs")
        // Signs with a key the JWKS never publishes: a forgery under a known kid.
        await keys.add(ecdsa: ES256PrivateKey(), kid: "forger")
    }

    /// `{"keys":[...]}` with the RSA key as `rsaKid` and the EC key as `ecKid`.
    public func jwks(rsaKid: String = "rsa-1", ecKid: String = "ec-1") throws -> String {
        let (modulus, exponent) = try rsaPublic.getKeyPrimitives()
        guard let (x, y) = ecPublic.parameters else { throw HarnessError("no EC parameters") }
        return """
            {"keys":[
              {"kty":"RSA","kid":"\(rsaKid)","use":"sig","n":"\(Self.base64URL(modulus))","e":"\(Self.base64URL(exponent))"},
              {"kty":"EC","kid":"\(ecKid)","crv":"P-256","x":"\(x)","y":"\(y)"}
            ]}
            """
    }

    /// A token signed with `algorithm` ("RS256", "ES256", "HS256") under the key named `kid`
    /// ("rsa-1" or "rsa-2", "ec-1", "hs", or "forger" for an unpublished key); the header's kid can be
    /// overridden to claim another key.
    public func token(_ algorithm: String, _ claims: TestClaims, kid: String? = nil, headerKid: String? = nil) async throws -> String {
        let signingKid = kid ?? ["RS256": "rsa-1", "ES256": "ec-1", "HS256": "hs"][algorithm]!
        var header = JWTHeader()
        header.alg = algorithm
        let token = try await keys.sign(claims, kid: JWKIdentifier(string: signingKid), header: header)
        guard let headerKid else { return token }
        // Re-sign is not possible under another kid: swap the header and keep the signature,
        // which then no longer matches (what a forger does).
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        let newHeader = "{\"alg\":\"\(algorithm)\",\"kid\":\"\(headerKid)\",\"typ\":\"JWT\",\"swapped\":true}"
        return "\(Self.base64URL(Data(newHeader.utf8))).\(parts[1]).\(parts[2])"
    }

    /// An HS256 token signed with the shared secret over a header and claims written as given
    /// (JSON an encoder would never write: a name twice, escapes).
    public func hs256Token(header: String = #"{"alg":"HS256","typ":"JWT"}"#, claims: String) async throws -> String {
        let input = "\(Self.base64URL(Data(header.utf8))).\(Self.base64URL(Data(claims.utf8)))"
        let signature = try await keys.getKey(for: JWKIdentifier(string: "hs")).sign(Array(input.utf8))
        return "\(input).\(Self.base64URL(Data(signature)))"
    }

    /// An unsigned token (`alg: none`), which must never be an identity.
    public static func unsigned(_ claims: TestClaims) throws -> String {
        let header = Self.base64URL(Data("{\"alg\":\"none\",\"typ\":\"JWT\"}".utf8))
        let payload = Self.base64URL(try JSONEncoder().encode(claims))
        return "\(header).\(payload)."
    }

    public static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}
