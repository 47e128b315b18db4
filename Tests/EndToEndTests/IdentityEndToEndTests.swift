import Foundation
import TestSupport
import XCTest

/// Identifiers from tokens, headers and queries, through the real binary and a real Redis.
final class IdentityEndToEndTests: XCTestCase {
    private var redis: RedisServer!
    private var harness: GatewayHarness!

    override func setUpWithError() throws {
        redis = try RedisServer()
    }

    override func tearDownWithError() throws {
        harness?.stop()
        redis?.stop()
    }

    private func redisWindow(_ name: String, limit: Int) -> String {
        """
        [limiters.\(name)]
        store_id = "redis"
        algorithm = "sliding_window"
        limit = \(limit)
        window_seconds = 60
        """
    }

    private var redisStore: String {
        """
        [stores.redis]
        strategy = "redis"
        url = "${REDIS_URL}"
        """
    }

    func testTokensOfEachAlgorithmKeyTheirSubjectsBudgetAndBadTokensAreRefused() async throws {
        let issuer = try await TestTokenIssuer()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("jwks-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let jwks = directory.appendingPathComponent("jwks.json")
        try issuer.jwks().write(to: jwks, atomically: true, encoding: .utf8)
        harness = try GatewayHarness(
            rateSync: redisStore + "\n" + redisWindow("per_user", limit: 3),
            routes: """
                [[routes]]
                name = "api"
                upstream = "app"
                limiters = ["per_user"]
                identifier = "jwt:sub"
                on_missing = "reject"
                """,
            gatewayExtras: """
                [jwt]
                algorithms = ["RS256", "ES256", "HS256"]
                jwks_file = "\(jwks.path)"
                hs256_secret = "${JWT_SECRET}"
                issuer = "https://auth.example.com"
                """,
            environment: ["REDIS_URL": redis.url, "JWT_SECRET": issuer.hmacSecret]
        )
        let base = harness.base
        func status(_ token: String?) throws -> Int {
            try curl(["-o", "/dev/null", "\(base)/items"] + (token.map { ["-H", "Authorization: Bearer \($0)"] } ?? [])).status
        }
        let later = TestClaims.now + 600
        let alice = TestClaims(sub: "alice", iss: "https://auth.example.com", exp: later)
        let rs = try await issuer.token("RS256", alice)
        let es = try await issuer.token("ES256", alice)
        let hs = try await issuer.token("HS256", alice)
        XCTAssertEqual(try [rs, es, hs, rs].map(status), [200, 200, 200, 429], "one subject, one budget, whatever the algorithm")
        XCTAssertEqual(try redis.cli(["ZCARD", "rate_limit:per_user:alice:window"]), "3")
        let bob = try await issuer.token("ES256", TestClaims(sub: "bob", iss: "https://auth.example.com", exp: later))
        XCTAssertEqual(try status(bob), 200, "another subject has its own budget")

        var expired = alice
        expired.sub = "mallory"
        expired.exp = TestClaims.now - 120
        var otherIssuer = alice
        otherIssuer.sub = "mallory"
        otherIssuer.iss = "https://evil.example.com"
        let refused = [
            try await issuer.token("RS256", expired),
            try await issuer.token("HS256", otherIssuer),
            try TestTokenIssuer.unsigned(TestClaims(sub: "mallory", iss: "https://auth.example.com", exp: later)),
            try await issuer.token("ES256", TestClaims(sub: "mallory", iss: "https://auth.example.com"), kid: "forger", headerKid: "ec-1"),
            // Signed, but naming `sub` twice: counted as the first, served as the last by most upstreams.
            try await issuer.hs256Token(claims: #"{"sub":"mallory","iss":"https://auth.example.com","exp":\#(later),"s\u0075b":"alice"}"#),
        ]
        for token in refused {
            let answer = try curl(["\(base)/items", "-H", "Authorization: Bearer \(token)"])
            XCTAssertEqual(answer.status, 401)
            XCTAssertEqual(answer.headers["www-authenticate"], "Bearer")
            XCTAssertEqual(((try answer.json())["detail"] as? [[String: Any]])?.first?["type"] as? String, "unauthorized")
        }
        XCTAssertEqual(try status(nil), 401, "no token")
        XCTAssertEqual(try redis.cli(["EXISTS", "rate_limit:per_user:mallory:window"]), "0", "no bad token became an identity")

        // The JWKS is read again on SIGHUP: a renamed key verifies from then on, the old name no longer.
        let renamed = try await issuer.token("RS256", TestClaims(sub: "carol", iss: "https://auth.example.com", exp: later), kid: "rsa-2")
        XCTAssertEqual(try status(renamed), 401)
        try issuer.jwks(rsaKid: "rsa-2").write(to: jwks, atomically: true, encoding: .utf8)
        try harness.reload()
        XCTAssertEqual(try status(renamed), 200)
        let oldName = try await issuer.token("RS256", TestClaims(sub: "carol", iss: "https://auth.example.com", exp: later))
        XCTAssertEqual(try status(oldName), 401)
    }

    func testATokenHeaderNamedInConnectionStillIdentifiesAndRepeatsOrPaddingChangeNothing() async throws {
        let issuer = try await TestTokenIssuer()
        harness = try GatewayHarness(
            rateSync: redisStore + "\n" + redisWindow("per_user", limit: 5),
            routes: """
                [[routes]]
                name = "api"
                upstream = "app"
                limiters = ["per_user"]
                identifier = "jwt:sub"
                on_missing = "reject"
                """,
            gatewayExtras: """
                [jwt]
                algorithms = ["HS256"]
                hs256_secret = "${JWT_SECRET}"
                """,
            environment: ["REDIS_URL": redis.url, "JWT_SECRET": issuer.hmacSecret]
        )
        let token = try await issuer.token("HS256", TestClaims(sub: "dana"))
        let url = "\(harness.base)/items"
        // Named in Connection, the header is not forwarded; the request is still limited as dana.
        let hidden = try curl([url, "-H", "Authorization: Bearer \(token)", "-H", "Connection: keep-alive, Authorization"])
        XCTAssertEqual(hidden.status, 200)
        XCTAssertFalse(hidden.text.lowercased().contains("\"authorization\""), "hop-by-hop by the client's word: \(hidden.text)")
        XCTAssertEqual(try curl(["-o", "/dev/null", url, "-H", "authorization:   bEaReR \t\(token)\t "]).status, 200, "case and padding")
        XCTAssertEqual(try redis.cli(["ZCARD", "rate_limit:per_user:dana:window"]), "2")
        let twice = try curl(["-o", "/dev/null", url, "-H", "Authorization: Bearer \(token)", "-H", "Authorization: Bearer \(token)"])
        XCTAssertEqual(twice.status, 401, "a repeated token header is no identity")
        XCTAssertEqual(try redis.cli(["ZCARD", "rate_limit:per_user:dana:window"]), "2")
    }

    func testCompositeAndQueryIdentifiersAndBoundedKeys() throws {
        harness = try GatewayHarness(
            rateSync: redisStore + "\n" + redisWindow("per_key", limit: 2),
            routes: """
                [[routes]]
                name = "strict"
                path_prefix = "/strict/"
                upstream = "app"
                limiters = ["per_key"]
                identifier = ["header:X-API-Key", "query:tenant"]
                on_missing = "reject"
                [[routes]]
                name = "lenient"
                upstream = "app"
                limiters = ["per_key"]
                identifier = ["header:X-API-Key", "query:tenant"]
                """,
            environment: ["REDIS_URL": redis.url]
        )
        let base = harness.base
        func status(_ path: String, key: String?) throws -> Int {
            try curl(["-o", "/dev/null", "\(base)\(path)"] + (key.map { ["-H", "X-API-Key: \($0)"] } ?? [])).status
        }
        XCTAssertEqual(try status("/strict/a?tenant=acme", key: "k1"), 200)
        XCTAssertEqual(try status("/strict/b?x=1&tenant=%61cme", key: "k1"), 200, "percent-decoded: the same tenant")
        XCTAssertEqual(try status("/strict/c?tenant=acme", key: "k1"), 429)
        XCTAssertEqual(try status("/strict/c?tenant=globex", key: "k1"), 200, "another tenant, another key")
        XCTAssertEqual(try status("/strict/c?tenant=acme", key: "k2"), 200)
        XCTAssertEqual(try redis.cli(["ZCARD", "rate_limit:per_key:k1|acme:window"]), "2")

        let missingHeader = try curl(["\(base)/strict/c?tenant=acme"])
        XCTAssertEqual(missingHeader.status, 400)
        XCTAssertTrue(missingHeader.text.contains("X-API-Key"), missingHeader.text)
        XCTAssertEqual(try status("/strict/c?tenant=", key: "k3"), 400, "an empty value is missing")

        // Without rejection, a missing part makes the whole identifier the client's address.
        XCTAssertEqual(try status("/open", key: "k1"), 200)
        XCTAssertEqual(try status("/open?tenant=acme", key: nil), 200)
        XCTAssertEqual(try status("/open", key: "k9"), 429)
        XCTAssertEqual(try redis.cli(["ZCARD", "rate_limit:per_key:127.0.0.1:window"]), "2")

        // A client cannot make keys grow with its header: long identifiers become digests.
        for index in 0..<3 {
            let huge = String(repeating: "x", count: 8000) + String(index)
            XCTAssertEqual(try status("/strict/h?tenant=t", key: huge), 200)
        }
        let keys = try redis.cli(["--scan", "--pattern", "rate_limit:*"]).split(separator: "\n")
        XCTAssertGreaterThanOrEqual(keys.count, 6)
        XCTAssertTrue(keys.allSatisfy { $0.utf8.count < 120 }, "\(keys.map(\.count))")
        XCTAssertEqual(keys.filter { $0.contains(":sha256:") }.count, 3)
    }
}
