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

    static let issueGateway = SeedFixtures.issueGatewayToml
    static let memoryRateSync = SeedFixtures.memoryLimiters

    func testTheIssuesFileLoadsWithPortUnsetAndSet() throws {
        let gateway = try write("gateway.toml", Self.issueGateway)
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
        let gateway = try write("gateway.toml", Self.issueGateway)
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
                    "\(file): upstreams.app.url: expected an http:// or https:// URL, found \"ftp://files\"",
                    "\(file): routes[0].upstream: no upstream named \"missing\" (upstreams defined: none)",
                    "\(file): routes[0].identifier: expected \"client_ip\", \"global\" or \"header:<Name>\", found \"cookie\"",
                    "\(directory.path)/rate-sync.toml: limiters.a.rate_per_second: a token_bucket limiter needs rate_per_second or max_concurrent",
                ]
            )
        }
    }

    func testRoutesMustNameDefinedLimiters() throws {
        let gateway = try write("gateway.toml", Self.issueGateway.replacingOccurrences(of: "[\"auth\"]", with: "[\"authz\"]"))
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
        let gateway = try write("gateway.toml", Self.issueGateway + "\n[tracing]\nenabled = true\n")
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
}
