import Foundation
import Gateway
import RateSync
import TestSupport
import XCTest

final class GatewayConfigTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("gwcfg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    private func write(_ name: String, _ text: String) throws -> String {
        let url = directory.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    static let deploymentGateway = DeploymentFixtures.gatewayToml
    static let memoryRateSync = DeploymentFixtures.memoryLimiters

    func testTheDeploymentGatewayFileLoadsWithPortUnsetAndSet() throws {
        let gateway = try write("gateway.toml", Self.deploymentGateway)
        _ = try write("rate-sync.toml", Self.memoryRateSync)

        let defaults = try LoadedConfig.load(gatewayPath: gateway, environment: [:])
        XCTAssertEqual(defaults.gateway.server.listen, ListenAddress(host: "127.0.0.1", port: 8080))
        XCTAssertEqual(defaults.gateway.admin, ListenAddress(host: "127.0.0.1", port: 9901))
        XCTAssertEqual(defaults.gateway.upstreams["app"]?.port, 8081)
        XCTAssertEqual(defaults.gateway.routes.map(\.name), ["auth", "public"])
        XCTAssertEqual(defaults.gateway.routes.map(\.limiters), [["auth"], ["public"]])
        XCTAssertEqual(defaults.gateway.rateSyncPath, directory.appendingPathComponent("rate-sync.toml").path)

        let set = try LoadedConfig.load(
            gatewayPath: gateway,
            environment: ["GATEWAY_PORT": "18080", "ADMIN_PORT": "19901", "UPSTREAM_PORT": "18081"]
        )
        XCTAssertEqual(set.gateway.server.listen.port, 18080)
        XCTAssertEqual(set.gateway.admin.port, 19901)
        XCTAssertEqual(set.gateway.upstreams["app"]?.port, 18081)
    }

    func testRateSyncConfigVariableOverridesThePath() throws {
        let gateway = try write("gateway.toml", Self.deploymentGateway)
        let elsewhere = try write("other.toml", Self.memoryRateSync)
        let loaded = try LoadedConfig.load(gatewayPath: gateway, environment: ["RATE_SYNC_CONFIG": elsewhere])
        XCTAssertEqual(loaded.gateway.rateSyncPath, elsewhere)
    }

    func testProblemsOfBothFilesAreListedTogether() throws {
        let gateway = try write(
            "gateway.toml",
            """
            [server]
            listen = "nowhere"
            workers = 0
            [upstreams.app]
            url = "ftp://files"
            [[routes]]
            name = "r"
            upstream = "missing"
            limiters = ["ghost"]
            identifier = "cookie"
            """
        )
        _ = try write("rate-sync.toml", "[stores.m]\nengine = \"memory\"\n[limiters.a]\nstore = \"m\"\n")
        XCTAssertThrowsError(try LoadedConfig.load(gatewayPath: gateway, environment: [:])) { error in
            let messages = (error as? ConfigError)?.problems.map(\.description) ?? []
            let file = gateway
            XCTAssertEqual(
                messages,
                [
                    "\(file): server.listen: expected host:port such as 127.0.0.1:8080 or [::1]:8080, found \"nowhere\"",
                    "\(file): server.workers: expected a whole number greater than 0, found 0",
                    "\(file): upstreams.app.url: expected an http:// or https:// URL such as http://127.0.0.1:8081, found \"ftp://files\"",
                    "\(file): routes[0].upstream: no upstream named \"missing\" (upstreams defined: app)",
                    "\(file): routes[0].identifier: expected \"client_ip\", \"global\", \"header:<Name>\", \"query:<name>\" or \"jwt:<claim>\", found \"cookie\"",
                    "\(directory.path)/rate-sync.toml: limiters.a.rate_per_second: a token_bucket limiter needs rate_per_second or max_concurrent",
                ]
            )
        }
    }

    func testRoutesMustNameDefinedLimiters() throws {
        let gateway = try write("gateway.toml", Self.deploymentGateway.replacingOccurrences(of: "[\"auth\"]", with: "[\"authz\"]"))
        _ = try write("rate-sync.toml", Self.memoryRateSync)
        XCTAssertThrowsError(try LoadedConfig.load(gatewayPath: gateway, environment: [:])) { error in
            XCTAssertEqual(
                (error as? ConfigError)?.problems.map(\.description),
                [
                    "\(gateway): routes[0].limiters: no limiter named \"authz\" in \(directory.path)/rate-sync.toml "
                        + "(limiters defined: auth, public)"
                ]
            )
        }
    }

    func testMissingFileAndUnknownKeys() throws {
        XCTAssertThrowsError(try LoadedConfig.load(gatewayPath: directory.path + "/absent.toml", environment: [:])) {
            XCTAssertEqual((($0 as? ConfigError)?.problems.first)?.message, "no such file")
        }
        let gateway = try write("gateway.toml", Self.deploymentGateway + "\n[tracing]\nenabled = true\n")
        _ = try write("rate-sync.toml", Self.memoryRateSync)
        XCTAssertThrowsError(try LoadedConfig.load(gatewayPath: gateway, environment: [:])) {
            let message = (($0 as? ConfigError)?.problems.first)?.description ?? ""
            XCTAssertTrue(message.hasPrefix("\(gateway): tracing: unknown key"), message)
        }
    }

    func testIdentifiersAndRouteConditions() throws {
        let gateway = try write(
            "gateway.toml",
            """
            [upstreams.app]
            url = "http://127.0.0.1:9/base/"
            [[routes]]
            name = "keyed"
            path_prefix = "/api/"
            methods = ["get", "POST"]
            host = "API.example.com"
            upstream = "app"
            identifier = "header:X-API-Key"
            on_missing_header = "reject"
            [[routes]]
            name = "everyone"
            upstream = "app"
            identifier = "global"
            """
        )
        _ = try write("rate-sync.toml", Self.memoryRateSync)
        let loaded = try LoadedConfig.load(gatewayPath: gateway, environment: [:])
        let keyed = loaded.gateway.routes[0]
        XCTAssertEqual(keyed.identifier, .header(name: "X-API-Key", rejectWhenMissing: true))
        XCTAssertEqual(keyed.methods, ["GET", "POST"])
        XCTAssertEqual(keyed.host, "api.example.com")
        XCTAssertEqual(loaded.gateway.routes[1].identifier, .global)
        XCTAssertEqual(loaded.gateway.routes[1].pathPrefix, "/")
        XCTAssertEqual(loaded.gateway.upstreams["app"]?.basePath, "/base")
    }

    /// A route's `host` is compared with a request's host without its port or trailing dot, and
    /// requests naming no valid host are refused: a host no request can match is a mistake.
    func testRouteHostsMustBeMatchable() throws {
        func load(_ host: String) throws -> String? {
            let gateway = try write("gateway.toml", "[upstreams.app]\nurl = \"http://127.0.0.1:9\"\n[[routes]]\nname = \"r\"\nhost = \"\(host)\"\nupstream = \"app\"\n")
            _ = try write("rate-sync.toml", Self.memoryRateSync)
            return try LoadedConfig.load(gatewayPath: gateway, environment: [:]).gateway.routes[0].host
        }
        XCTAssertEqual(try load("Admin.Example."), "admin.example")
        XCTAssertEqual(try load("[::1]"), "[::1]")
        XCTAssertEqual(try load("10.0.0.1"), "10.0.0.1")
        XCTAssertEqual(try load("[0:0::1]"), "[::1]")
        for bad in ["admin.example:8080", "admin%2eexample", "admin..example", "", "a b", "[::1]:80", "a:", "127.1", "[1::2::3]"] {
            XCTAssertThrowsError(try load(bad), bad) { error in
                let message = (error as? ConfigError)?.problems.first?.description ?? ""
                XCTAssertTrue(message.hasSuffix("routes[0].host: expected a host name or address without a port, such as api.example.com, found \"\(bad.lowercased())\""), message)
            }
        }
    }

    func testIdentityShadowCostAndLocalDegradeSettings() throws {
        let gateway = try write(
            "gateway.toml",
            """
            [upstreams.app]
            url = "http://127.0.0.1:9"
            [jwt]
            algorithms = ["RS256", "HS256"]
            jwks_file = "keys/jwks.json"
            hs256_secret = "${JWT_SECRET}"
            issuer = "https://auth.example.com"
            audience = "api"
            jwt_header = "X-Token"
            [stores.local]
            on_failure = "local"
            local_divisor = 3
            [[routes]]
            name = "users"
            upstream = "app"
            identifier = "jwt:sub"
            on_missing = "reject"
            limiters = ["auth"]
            shadow = ["public", "auth", "public"]
            cost = 2
            [[routes]]
            name = "keys"
            upstream = "app"
            identifier = ["header:X-API-Key", "query:api_key", "client_ip"]
            """
        )
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("keys"), withIntermediateDirectories: true)
        _ = try write("keys/jwks.json", #"{"keys":[]}"#)
        _ = try write("rate-sync.toml", Self.memoryRateSync)
        let loaded = try LoadedConfig.load(gatewayPath: gateway, environment: ["JWT_SECRET": "a-secret-of-at-least-thirty-two-bytes"])
        let users = loaded.gateway.routes[0]
        XCTAssertEqual(users.identifier, IdentifierRule(parts: [.jwtClaim("sub")], onMissing: .reject))
        XCTAssertEqual(users.shadow, ["public", "auth"])
        XCTAssertEqual(users.consultedLimiters, ["auth", "public"])
        XCTAssertEqual(users.cost, 2)
        XCTAssertEqual(loaded.gateway.routes[1].identifier, IdentifierRule(parts: [.header("X-API-Key"), .query("api_key"), .clientIP]))
        XCTAssertEqual(loaded.gateway.routes[1].cost, 1)
        let jwt = try XCTUnwrap(loaded.gateway.jwt)
        XCTAssertEqual(jwt.algorithms, ["RS256", "HS256"])
        XCTAssertEqual(jwt.jwksPath, directory.appendingPathComponent("keys/jwks.json").path, "relative to gateway.toml")
        XCTAssertEqual(jwt.hs256Secret, "a-secret-of-at-least-thirty-two-bytes")
        XCTAssertEqual(jwt.header, "x-token")
        XCTAssertNotNil(loaded.tokenVerifier)
        XCTAssertEqual(loaded.gateway.storeSettings(for: "local").localDivisor, 3)
        XCTAssertNil(loaded.gateway.storeSettings(for: "other").localDivisor, "on_failure = \"policy\" by default")
    }

    func testIdentityShadowCostAndDegradeMistakesAreProblems() throws {
        let gateway = try write(
            "gateway.toml",
            """
            [upstreams.app]
            url = "http://127.0.0.1:9"
            [jwt]
            algorithms = ["none", "HS256", "RS256"]
            jwks_file = "missing.json"
            jwt_header = "X Token"
            [stores.mem]
            on_failure = "ask"
            [stores.other]
            local_divisor = 2
            [[routes]]
            name = "a"
            upstream = "app"
            identifier = ["header:X-Key", "cookie:session"]
            [[routes]]
            name = "b"
            upstream = "app"
            identifier = "query:"
            on_missing = "client_ip"
            on_missing_header = "reject"
            [[routes]]
            name = "c"
            upstream = "app"
            limiters = ["auth"]
            shadow = ["nope"]
            cost = 11
            [[routes]]
            name = "d"
            upstream = "app"
            identifier = []
            cost = 0
            [[routes]]
            name = "e"
            upstream = "app"
            path_prefix = "/api;v=1/"
            """
        )
        _ = try write("rate-sync.toml", Self.memoryRateSync)
        XCTAssertThrowsError(try LoadedConfig.load(gatewayPath: gateway, environment: [:])) { error in
            let text = ((error as? ConfigError)?.problems ?? []).map(\.description).joined(separator: "\n")
            for expected in [
                "jwt.algorithms: expected RS256, ES256 or HS256, found \"none\"",
                "jwt.hs256_secret: HS256 needs hs256_secret",
                "jwt.jwt_header: expected a header name, found \"X Token\"",
                "stores.mem.on_failure: expected \"policy\" or \"local\", found \"ask\"",
                "stores.other.local_divisor: local_divisor needs on_failure = \"local\"",
                "routes[0].identifier: expected \"client_ip\", \"global\", \"header:<Name>\", \"query:<name>\" or \"jwt:<claim>\", found \"cookie:session\"",
                "routes[1].identifier: expected a query parameter name after the colon, found \"query:\"",
                "routes[1].on_missing_header: on_missing is \"client_ip\" and on_missing_header \"reject\": keep one",
                "routes[3].identifier: expected at least one part",
                "routes[3].cost: expected a whole number",
                "routes[4].path_prefix: a path prefix cannot hold ';' (paths are matched without their segments' parameters), found \"/api;v=1/\"",
            ] {
                XCTAssertTrue(text.contains(expected), "missing: \(expected)\nin:\n\(text)")
            }
        }
    }

    func testACostNoRequestCouldPayAndATokenIdentifierWithoutKeysAreProblems() throws {
        let gateway = try write(
            "gateway.toml",
            """
            [upstreams.app]
            url = "http://127.0.0.1:9"
            [[routes]]
            name = "c"
            upstream = "app"
            identifier = "jwt:sub"
            limiters = ["auth"]
            shadow = ["nope"]
            cost = 11
            [limiters.public]
            lease_seconds = 5
            """
        )
        _ = try write("rate-sync.toml", Self.memoryRateSync)
        XCTAssertThrowsError(try LoadedConfig.load(gatewayPath: gateway, environment: [:])) { error in
            let text = ((error as? ConfigError)?.problems ?? []).map(\.description).joined(separator: "\n")
            XCTAssertTrue(text.contains("routes[0].cost: cost 11 is more than limiter \"auth\" ever admits at once (10)"), text)
            XCTAssertTrue(text.contains("routes[0].identifier: a jwt: identifier needs a [jwt] table"), text)
            XCTAssertTrue(text.contains("routes[0].shadow: no limiter named \"nope\""), text)
            XCTAssertTrue(text.contains("limiters.public.lease_seconds: lease_seconds needs a limiter with max_concurrent"), text)
        }
    }

    func testAJWKSThatDoesNotLoadIsAProblem() throws {
        _ = try write("jwks.json", #"{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}"#)
        let gateway = try write(
            "gateway.toml",
            """
            [upstreams.app]
            url = "http://127.0.0.1:9"
            [jwt]
            jwks_file = "jwks.json"
            [[routes]]
            name = "c"
            upstream = "app"
            identifier = "jwt:sub"
            """
        )
        _ = try write("rate-sync.toml", Self.memoryRateSync)
        XCTAssertThrowsError(try LoadedConfig.load(gatewayPath: gateway, environment: [:])) { error in
            let text = ((error as? ConfigError)?.problems ?? []).map(\.description).joined(separator: "\n")
            XCTAssertTrue(text.contains("jwt: jwks_file: key 0 has no \"kid\""), text)
        }
    }
}
