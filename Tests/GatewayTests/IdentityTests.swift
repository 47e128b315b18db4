import Foundation
import NIOHTTP1
import TestSupport
import XCTest

@testable import Gateway

/// Identifiers: composite, query and token-claim parts, their fallbacks, and bounded keys.
final class IdentityTests: XCTestCase {
    private func head(_ uri: String = "/", _ headers: [(String, String)] = []) -> HTTPRequestHead {
        HTTPRequestHead(version: .http1_1, method: .GET, uri: uri, headers: HTTPHeaders(headers))
    }

    private func identify(
        _ rule: IdentifierRule,
        _ head: HTTPRequestHead,
        verifier: TokenVerifier? = nil,
        now: Double = Double(TestClaims.now)
    ) -> IdentifierExtractor.Outcome {
        let query = RequestPath(uri: head.uri)?.query ?? ""
        let decoded = IdentifierExtractor.identify(rule: rule, request: ClientRequest(head), query: query, verifier: verifier, now: now, clientIP: { "192.0.2.7" })
        let fromBytes = IdentifierExtractor.identify(rule: rule, request: received(head), query: query, verifier: verifier, now: now, clientIP: { "192.0.2.7" })
        XCTAssertEqual(fromBytes, decoded, "the same fields read from the bytes an HTTP/1.1 client sent")
        return decoded
    }

    /// The request as an HTTP/1.1 client would send it, read by the parser.
    private func received(_ head: HTTPRequestHead) -> ClientRequest {
        var text = "\(head.method.rawValue) \(head.uri) HTTP/1.1\r\n"
        for (name, value) in head.headers { text += "\(name): \(value)\r\n" }
        text += "\r\n"
        var room = HTTP1HeadParser.RequestRoom()
        do {
            return try Array(text.utf8).withUnsafeBytes { bytes throws(HTTP1RequestError) in try HTTP1HeadParser.requestHead(bytes, room: &room).request }
        } catch {
            XCTFail("the head does not parse: \(error)")
            return ClientRequest(head)
        }
    }

    /// A parameter of the query the upstream would get for `uri`.
    private func queryParameter(_ name: String, in uri: String) -> SingleValue {
        QueryParameter.only(name, inQuery: RequestPath(uri: uri)?.query ?? "")
    }

    private func rule(_ parts: [String], onMissing: IdentifierRule.OnMissing = .clientIP) throws -> IdentifierRule {
        IdentifierRule(parts: try parts.map { try IdentifierRule.part($0).get() }, onMissing: onMissing)
    }

    func testACompositeJoinsItsPartsAndNoTwoPartSetsJoinAlike() throws {
        let composite = try rule(["header:X-API-Key", "client_ip"])
        XCTAssertEqual(identify(composite, head("/", [("X-API-Key", "k1")])), .identifier("k1|192.0.2.7"))
        let pair = try rule(["header:A", "header:B"])
        let first = identify(pair, head("/", [("A", "x|y"), ("B", "z")]))
        let second = identify(pair, head("/", [("A", "x"), ("B", "y|z")]))
        XCTAssertNotEqual(first, second, "a separator inside a part cannot shift the boundary")
        XCTAssertNotEqual(identify(pair, head("/", [("A", "x%7Cy"), ("B", "z")])), first, "nor can an escape written by hand")
    }

    func testAMissingPartFallsBackWhollyToTheClientOrIsRefused() throws {
        let composite = try rule(["header:X-API-Key", "query:tenant"])
        XCTAssertEqual(identify(composite, head("/?tenant=t", [])), .identifier("192.0.2.7"), "the whole identifier, not just the part")
        let strict = try rule(["header:X-API-Key", "query:tenant"], onMissing: .reject)
        XCTAssertEqual(identify(strict, head("/?tenant=t", [])), .missingPart("The X-API-Key header"))
        XCTAssertEqual(identify(strict, head("/?other=1", [("X-API-Key", "k")])), .missingPart("The tenant query parameter"))
        XCTAssertEqual(identify(strict, head("/?tenant=", [("X-API-Key", "k")])), .missingPart("The tenant query parameter"), "empty is missing")
        XCTAssertEqual(identify(strict, head("/?tenant=t", [("X-API-Key", "")])), .missingPart("The X-API-Key header"))
    }

    func testQueryValuesArePercentDecodedAndCountOnlyWhenSentOnce() {
        XCTAssertEqual(queryParameter("api_key", in: "/x?a=1&api_key=k%2Fy%20z+w&b=2"), .one("k/y z w"))
        XCTAssertEqual(queryParameter("api_key", in: "/x?api%5Fkey=encoded-name"), .one("encoded-name"))
        XCTAssertEqual(queryParameter("api_key", in: "/x?api_key=%zz%4"), .one("%zz%4"), "broken escapes stay as written")
        XCTAssertEqual(queryParameter("api_key", in: "/x?api_key=%C3%A9"), .one("é"))
        XCTAssertEqual(queryParameter("api_key", in: "/x?api_key"), .one(""))
        XCTAssertEqual(queryParameter("api_key", in: "/x?api_key="), .one(""))
        XCTAssertEqual(queryParameter("api_key", in: "/x#api_key=frag"), SingleValue.none)
        // The query the upstream gets (RequestPath drops a fragment): a `?` inside one begins none.
        XCTAssertEqual(queryParameter("api_key", in: "/x#y?api_key=frag"), SingleValue.none)
        XCTAssertEqual(queryParameter("api_key", in: "/x?api_key=z#&api_key=victim"), .one("z"))
        XCTAssertEqual(queryParameter("api_key", in: "/x?api_keys=1&xapi_key=2"), SingleValue.none)
        XCTAssertEqual(queryParameter("api_key", in: "/x"), SingleValue.none)
        // A form parser keeps one of them (Starlette the last): which one is not ours to guess.
        XCTAssertEqual(queryParameter("api_key", in: "/x?api_key=a&api_key=b"), .repeated)
        XCTAssertEqual(queryParameter("api_key", in: "/x?api_key&api_key=b"), .repeated)
        XCTAssertEqual(queryParameter("api_key", in: "/x?api_key=a&api%5fkey=b"), .repeated, "an encoded name is the same name")
    }

    /// A form parser (Python's, PHP's, Go's, Node's) compares names by code point, so a name
    /// that is only canonically equivalent (a Kelvin sign for `K`) is another parameter, as
    /// it is to the upstream; neither is a prefix of the name, nor the name with more after it.
    func testQueryNamesAreComparedAsTheBytesTheyDecodeTo() {
        XCTAssertEqual(queryParameter("Key", in: "/x?%E2%84%AAey=a"), SingleValue.none)
        XCTAssertEqual(queryParameter("Key", in: "/x?Key=a&%E2%84%AAey=b"), .one("a"))
        XCTAssertEqual(queryParameter("\u{212A}ey", in: "/x?%E2%84%AAey=b&Key=a"), .one("b"))
        XCTAssertEqual(queryParameter("a b", in: "/x?a+b=1&ab=2&a%20b2=3"), .one("1"))
        XCTAssertEqual(queryParameter("api_key", in: "/x?api_ke=1&api_key_=2&api%5Fke=3&api%5Fkey%00=4"), SingleValue.none)
        XCTAssertEqual(queryParameter("api_key", in: "/x?&&api_key=1&&"), .one("1"), "empty pairs are skipped")
    }

    /// A long query of other pairs is walked to its end, and a second match found past them.
    func testAQueryOfManyPairsIsReadToItsEnd() {
        let others = (0..<3000).map { "p\($0)=\($0)" }.joined(separator: "&")
        XCTAssertEqual(queryParameter("api_key", in: "/x?\(others)&api_key=last"), .one("last"))
        XCTAssertEqual(queryParameter("api_key", in: "/x?api_key=first&\(others)&api%5Fkey=last"), .repeated)
        XCTAssertEqual(queryParameter("api_key", in: "/x?\(others)"), SingleValue.none)
    }

    func testAPartSentMoreThanOnceIsRefusedWhateverTheFallBack() throws {
        for onMissing in [IdentifierRule.OnMissing.clientIP, .reject] {
            let byHeader = try rule(["header:X-API-Key"], onMissing: onMissing)
            XCTAssertEqual(
                identify(byHeader, head("/", [("X-API-Key", "fresh-each-time"), ("x-api-key", "real")])),
                .repeatedPart("The X-API-Key header")
            )
            XCTAssertEqual(
                identify(byHeader, head("/", [("X-API-Key", ""), ("X-API-Key", "real")])),
                .repeatedPart("The X-API-Key header"),
                "an empty one counts too"
            )
            let byQuery = try rule(["client_ip", "query:api_key"], onMissing: onMissing)
            XCTAssertEqual(identify(byQuery, head("/?api_key=a&api_key=b")), .repeatedPart("The api_key query parameter"))
        }
        XCTAssertEqual(identify(try rule(["header:X-API-Key"]), head("/", [("X-API-Key", "k"), ("X-Other", "k")])), .identifier("k"))
    }

    func testLongIdentifiersBecomeADigestOfFixedSize() throws {
        let keyed = try rule(["header:X-API-Key"])
        let short = String(repeating: "k", count: 256)
        XCTAssertEqual(identify(keyed, head("/", [("X-API-Key", short)])), .identifier(short))
        let long = String(repeating: "k", count: 100_000)
        guard case .identifier(let digest) = identify(keyed, head("/", [("X-API-Key", long)])) else { return XCTFail() }
        XCTAssertTrue(digest.hasPrefix("sha256:"))
        XCTAssertEqual(digest.utf8.count, 7 + 64)
        guard case .identifier(let other) = identify(keyed, head("/", [("X-API-Key", long + "x")])) else { return XCTFail() }
        XCTAssertNotEqual(digest, other, "distinct long values stay distinct")
        let composite = try rule(["header:X-API-Key", "client_ip"])
        guard case .identifier(let joined) = identify(composite, head("/", [("X-API-Key", long)])) else { return XCTFail() }
        XCTAssertEqual(joined.utf8.count, 71, "composites are bounded too")
    }

    // MARK: tokens

    private func verifier(
        _ issuer: TestTokenIssuer,
        algorithms: Set<String> = ["RS256", "ES256", "HS256"],
        iss: String? = nil,
        aud: String? = nil,
        header: String? = nil
    ) throws -> TokenVerifier {
        let jwks = FileManager.default.temporaryDirectory.appendingPathComponent("jwks-\(UUID().uuidString).json")
        try issuer.jwks().write(to: jwks, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: jwks) }
        let settings = GatewayConfig.JWTSettings(
            algorithms: algorithms,
            jwksPath: jwks.path,
            hs256Secret: issuer.hmacSecret,
            issuer: iss,
            audience: aud,
            header: header
        )
        return try TokenVerifier.load(settings).get()
    }

    private func bearer(_ token: String) -> HTTPRequestHead { head("/", [("Authorization", "Bearer \(token)")]) }

    func testATokenSignedWithEachAlgorithmIsKeyedByItsClaim() async throws {
        let issuer = try await TestTokenIssuer()
        let verifier = try verifier(issuer)
        let bySubject = try rule(["jwt:sub"], onMissing: .reject)
        for algorithm in ["RS256", "ES256", "HS256"] {
            let token = try await issuer.token(algorithm, TestClaims(sub: "user-\(algorithm)", exp: TestClaims.now + 600))
            XCTAssertEqual(identify(bySubject, bearer(token), verifier: verifier), .identifier("user-\(algorithm)"), algorithm)
        }
        let tenant = try await issuer.token("ES256", TestClaims(sub: "u", tenant: "acme"))
        XCTAssertEqual(identify(try rule(["jwt:tenant", "jwt:sub"]), bearer(tenant), verifier: verifier), .identifier("acme|u"))
        XCTAssertEqual(identify(try rule(["jwt:missing"], onMissing: .reject), bearer(tenant), verifier: verifier), .unverifiedToken)
    }

    func testTokensThatDoNotVerifyAreNeverAnIdentity() async throws {
        let issuer = try await TestTokenIssuer()
        let verifier = try verifier(issuer, iss: "https://auth.example.com", aud: "api")
        let now = TestClaims.now
        let good = TestClaims(sub: "victim", iss: "https://auth.example.com", aud: "api", exp: now + 600)
        let strict = try rule(["jwt:sub"], onMissing: .reject)
        let lenient = try rule(["jwt:sub"])
        let token1 = try await issuer.token("RS256", good)
        XCTAssertEqual(identify(strict, bearer(token1), verifier: verifier), .identifier("victim"))

        var expired = good
        expired.exp = now - 31
        var withinLeeway = good
        withinLeeway.exp = now - 20
        var notYet = good
        notYet.nbf = now + 60
        var wrongIssuer = good
        wrongIssuer.iss = "https://evil.example.com"
        var wrongAudience = good
        wrongAudience.aud = "other"
        var noIssuer = good
        noIssuer.iss = nil
        let bad: [(String, String)] = [
            ("expired", try await issuer.token("RS256", expired)),
            ("not yet valid", try await issuer.token("ES256", notYet)),
            ("wrong issuer", try await issuer.token("HS256", wrongIssuer)),
            ("no issuer", try await issuer.token("HS256", noIssuer)),
            ("wrong audience", try await issuer.token("RS256", wrongAudience)),
            ("alg none", try TestTokenIssuer.unsigned(good)),
            ("unpublished key claiming a published kid", try await issuer.token("ES256", good, kid: "forger", headerKid: "ec-1")),
            ("unknown kid", try await issuer.token("ES256", good, kid: "forger")),
            ("header swapped under a signature", try await issuer.token("ES256", good, headerKid: "ec-1")),
            ("garbage", "not.a.token"),
            ("empty", ""),
        ]
        for (what, token) in bad {
            XCTAssertEqual(identify(strict, bearer(token), verifier: verifier), .unverifiedToken, what)
            XCTAssertEqual(identify(lenient, bearer(token), verifier: verifier), .identifier("192.0.2.7"), what)
        }
        // A payload swapped under a valid signature.
        let valid = try await issuer.token("RS256", good).split(separator: ".")
        let forgedPayload = TestTokenIssuer.base64URL(try JSONEncoder().encode(TestClaims(sub: "admin", iss: good.iss, aud: "api", exp: now + 600)))
        XCTAssertEqual(identify(strict, bearer("\(valid[0]).\(forgedPayload).\(valid[2])"), verifier: verifier), .unverifiedToken)
        let token2 = try await issuer.token("RS256", withinLeeway)
        XCTAssertEqual(identify(strict, bearer(token2), verifier: verifier), .identifier("victim"), "30 s leeway")
        XCTAssertEqual(identify(strict, head("/"), verifier: verifier), .unverifiedToken, "no token at all")
        let twice = try await issuer.token("RS256", good)
        XCTAssertEqual(
            identify(strict, head("/", [("Authorization", "Bearer \(twice)"), ("Authorization", "Bearer \(twice)")]), verifier: verifier),
            .unverifiedToken,
            "a repeated Authorization header carries no identity"
        )
        XCTAssertEqual(
            identify(lenient, head("/", [("Authorization", "Bearer \(twice)"), ("authorization", "Bearer \(twice)")]), verifier: verifier),
            .unverifiedToken,
            "nor is it a missing one, to be counted by the client's address instead"
        )
        XCTAssertEqual(identify(strict, head("/", [("Authorization", "bearer   \(twice)  ")]), verifier: verifier), .identifier("victim"))
        XCTAssertEqual(identify(strict, head("/", [("Authorization", "Basic \(twice)")]), verifier: verifier), .unverifiedToken)
    }

    func testATokenNamingAMemberTwiceIsNeverAnIdentity() async throws {
        let issuer = try await TestTokenIssuer()
        let verifier = try verifier(issuer)
        let strict = try rule(["jwt:sub"], onMissing: .reject)
        let exp = TestClaims.now + 600
        let once = try await issuer.hs256Token(claims: #"{"sub":"alice","exp":\#(exp),"roles":{"sub":1,"x":["sub"]},"n":"s\"ub"}"#)
        XCTAssertEqual(identify(strict, bearer(once), verifier: verifier), .identifier("alice"), "nested and quoted names are not top-level ones")
        let twice: [(String, String, String)] = [
            ("a claim twice", #"{"alg":"HS256"}"#, #"{"sub":"alice","exp":\#(exp),"sub":"bob"}"#),
            ("a claim twice, once escaped", #"{"alg":"HS256"}"#, #"{"sub":"alice","exp":\#(exp),"s\u0075b":"bob"}"#),
            ("a registered claim twice", #"{"alg":"HS256"}"#, #"{"sub":"alice","exp":\#(exp),"exp":1}"#),
            ("a header member twice", #"{"alg":"HS256","kid":"a","kid":"b"}"#, #"{"sub":"alice","exp":\#(exp)}"#),
            ("an escaped surrogate pair twice", #"{"alg":"HS256"}"#, #"{"sub":"alice","\ud83d\ude00":1,"😀":2}"#),
        ]
        for (what, header, claims) in twice {
            let token = try await issuer.hs256Token(header: header, claims: claims)
            XCTAssertEqual(identify(strict, bearer(token), verifier: verifier), .unverifiedToken, what)
        }
    }

    func testJSONMemberNamesAreComparedAsDecoded() {
        for (json, unique) in [
            (#"{}"#, true), (#" { "a" : 1 , "b" : [1, {"a": 2}] } "#, true), (#"{"a":"}","b":"{\"a\""}"#, true),
            (#"{"a":1,"a":2}"#, false), (#"{"a":1,"\u0061":2}"#, false), (#"{"\/":1,"/":2}"#, false),
            (#"{"\ud800":1,"\udc00":2}"#, true), (#"{"\ud800":1,"\ud800":2}"#, false),
            (#"[1]"#, false), (#"{"a":1"#, false), (#"{"a":1}x"#, false), (#"{"a" 1}"#, false), (#"{"a":}"#, false),
        ] {
            XCTAssertEqual(JSONMemberNames.areUnique(Array(json.utf8)), unique, json)
        }
    }

    func testOnlyConfiguredAlgorithmsVerify() async throws {
        let issuer = try await TestTokenIssuer()
        let rsaOnly = try verifier(issuer, algorithms: ["RS256"])
        let strict = try rule(["jwt:sub"], onMissing: .reject)
        let claims = TestClaims(sub: "u")
        let token3 = try await issuer.token("RS256", claims)
        XCTAssertEqual(identify(strict, bearer(token3), verifier: rsaOnly), .identifier("u"))
        let token4 = try await issuer.token("HS256", claims)
        XCTAssertEqual(identify(strict, bearer(token4), verifier: rsaOnly), .unverifiedToken)
        let token5 = try await issuer.token("ES256", claims)
        XCTAssertEqual(identify(strict, bearer(token5), verifier: rsaOnly), .unverifiedToken)
    }

    func testTheBearerSchemeIsReadOnBytes() {
        XCTAssertEqual(TokenVerifier.token(from: "Bearer abc.def.ghi", bearerRequired: true), "abc.def.ghi")
        XCTAssertEqual(TokenVerifier.token(from: " \tBEARER\t abc  \t", bearerRequired: true), "abc")
        XCTAssertEqual(TokenVerifier.token(from: "bEaReR x", bearerRequired: true), "x")
        XCTAssertNil(TokenVerifier.token(from: "Bearer", bearerRequired: true))
        XCTAssertNil(TokenVerifier.token(from: "Bearer    ", bearerRequired: true))
        XCTAssertNil(TokenVerifier.token(from: "Bearerabc", bearerRequired: true))
        XCTAssertNil(TokenVerifier.token(from: "Basic abc", bearerRequired: true))
        XCTAssertNil(TokenVerifier.token(from: "", bearerRequired: false))
        XCTAssertEqual(TokenVerifier.token(from: " abc ", bearerRequired: false), "abc")
        XCTAssertEqual(TokenVerifier.token(from: "Bearer abc", bearerRequired: false), "abc")
        XCTAssertEqual(TokenVerifier.token(from: "Bearer é\u{00}", bearerRequired: true), "é\u{00}", "bytes pass as they are")
    }

    func testATokenHeaderOtherThanAuthorization() async throws {
        let issuer = try await TestTokenIssuer()
        let verifier = try verifier(issuer, header: "x-token")
        let token = try await issuer.token("HS256", TestClaims(sub: "u"))
        let strict = try rule(["jwt:sub"], onMissing: .reject)
        XCTAssertEqual(identify(strict, head("/", [("X-Token", token)]), verifier: verifier), .identifier("u"))
        XCTAssertEqual(identify(strict, bearer(token), verifier: verifier), .unverifiedToken, "only the configured header is read")
    }

    func testTheLoopsTokenCacheNeverOutlivesATokenOrItsKeys() async throws {
        let issuer = try await TestTokenIssuer()
        let verifier = try verifier(issuer)
        let cache = VerifiedTokenCache()
        let now = Double(TestClaims.now)
        let token = try await issuer.token("ES256", TestClaims(sub: "u", exp: Int(now) + 600))
        XCTAssertEqual(cache.claims(token, verifier: verifier, now: now)?.values["sub"], .text("u"))
        XCTAssertEqual(cache.count, 1)
        XCTAssertEqual(cache.claims(token, verifier: verifier, now: now + 1)?.values["sub"], .text("u"))
        XCTAssertEqual(cache.count, 1, "served from the cache")
        XCTAssertNil(cache.claims(token, verifier: verifier, now: now + 600 + 31), "expired, cached or not")
        let reloaded = try self.verifier(issuer, algorithms: ["RS256"])
        XCTAssertNil(cache.claims(token, verifier: reloaded, now: now + 2), "new keys: verified again, and refused")
        XCTAssertNil(cache.claims("garbage", verifier: verifier, now: now))
        XCTAssertEqual(cache.count, 1, "refused tokens are not kept")
        let noExpiry = try await issuer.token("HS256", TestClaims(sub: "v"))
        XCTAssertNotNil(cache.claims(noExpiry, verifier: verifier, now: now))
        XCTAssertEqual(cache.count, 2)
    }
}
