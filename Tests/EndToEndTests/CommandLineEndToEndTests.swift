import Foundation
import TestSupport
import XCTest

/// The executable's command line: check, help, version, and refusing a bad config.
final class CommandLineEndToEndTests: XCTestCase {
    private func directory(gateway: String, rateSync: String) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ratesync-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try gateway.write(to: directory.appendingPathComponent("gateway.toml"), atomically: true, encoding: .utf8)
        try rateSync.write(to: directory.appendingPathComponent("rate-sync.toml"), atomically: true, encoding: .utf8)
        return directory
    }

    func testCheckAcceptsAGoodConfigAndListsEveryProblemOfABadOne() throws {
        let good = try directory(
            gateway: "[upstreams.app]\nurl = \"http://127.0.0.1:1\"\n" + GatewayHarness.deploymentRoutes,
            rateSync: GatewayHarness.deploymentLimiters
        )
        defer { try? FileManager.default.removeItem(at: good) }
        let ok = try runProgram(Binaries.gateway.path, ["check", "--config", good.appendingPathComponent("gateway.toml").path])
        XCTAssertEqual(ok.status, 0, ok.output)

        let bad = try directory(
            gateway: "[upstreams.app]\nurl = \"http://127.0.0.1:1\"\n" + GatewayHarness.deploymentRoutes,
            rateSync: GatewayHarness.deploymentLimiters.replacingOccurrences(of: "limit = 10", with: "limit = 0")
                .replacingOccurrences(of: "rate_per_second = 100.0", with: "rate_per_second = \"${RATE}\"")
        )
        defer { try? FileManager.default.removeItem(at: bad) }
        let path = bad.appendingPathComponent("gateway.toml").path
        let failed = try runProgram(Binaries.gateway.path, ["check", "--config", path])
        XCTAssertEqual(failed.status, 1)
        XCTAssertTrue(failed.output.contains("limiters.auth.limit: expected a whole number greater than 0, found 0"), failed.output)
        XCTAssertTrue(failed.output.contains("limiters.public.rate_per_second: environment variable RATE is not set"), failed.output)

        // Running with the same file refuses to start, with the same messages.
        let refused = try runProgram(Binaries.gateway.path, ["--config", path])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.output.contains("limiters.auth.limit"), refused.output)
    }

    /// Values that once crashed `check` or the gateway's first request: each is a clear problem
    /// now, and `check` lists them all.
    func testHostileNumbersAndAddressesAreProblemsNotCrashes() throws {
        let hostile = try directory(
            gateway: """
                [server]
                trusted_proxies = ["", "/8", "10.0.0.0/99"]
                idle_timeout_seconds = 1e300
                [upstreams.app]
                url = "http://127.0.0.1:1"

                """ + GatewayHarness.deploymentRoutes,
            rateSync: """
                [stores.m]
                engine = "memory"
                [limiters.public]
                store = "m"
                rate_per_second = 1e19
                [limiters.auth]
                store = "m"
                algorithm = "sliding_window"
                limit = 10
                window_seconds = 1e300
                """
        )
        defer { try? FileManager.default.removeItem(at: hostile) }
        let result = try runProgram(Binaries.gateway.path, ["check", "--config", hostile.appendingPathComponent("gateway.toml").path])
        XCTAssertEqual(result.status, 1, result.output)
        for expected in [
            "server.trusted_proxies[0]", "server.trusted_proxies[1]", "server.trusted_proxies[2]",
            "server.idle_timeout_seconds: expected a number of at most 86400",
            "limiters.public.rate_per_second: expected a number of at most 1000000000",
            "limiters.auth.window_seconds: expected a number of at most 31536000",
        ] {
            XCTAssertTrue(result.output.contains(expected), "missing \(expected) in:\n\(result.output)")
        }
    }

    func testHelpAndVersion() throws {
        let help = try runProgram(Binaries.gateway.path, ["--help"])
        XCTAssertEqual(help.status, 0)
        XCTAssertTrue(help.output.contains("check"), help.output)
        let version = try runProgram(Binaries.gateway.path, ["--version"])
        XCTAssertEqual(version.status, 0)
        XCTAssertFalse(version.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty)
    }

    func testSigtermStopsTheGatewayCleanly() throws {
        let harness = try GatewayHarness(rateSync: GatewayHarness.deploymentLimiters, routes: GatewayHarness.deploymentRoutes)
        defer { harness.stop() }
        kill(harness.gateway.pid, SIGTERM)
        XCTAssertEqual(try harness.gateway.waitForExit(), 0)
    }

    func testBadCertificateOrKeyFilesAreClearErrors() throws {
        let certificates = try TestCertificates(commonName: "localhost")
        defer { certificates.remove() }
        let tls = { (cert: String, key: String) in
            "[server]\nlisten = \"127.0.0.1:0\"\n[server.tls]\ncert = \"\(cert)\"\nkey = \"\(key)\"\n[admin]\nlisten = \"127.0.0.1:0\"\n"
                + "[upstreams.app]\nurl = \"http://127.0.0.1:1\"\n" + GatewayHarness.deploymentRoutes
        }
        let missing = try directory(gateway: tls("/nonexistent/gateway.pem", certificates.serverKey), rateSync: GatewayHarness.deploymentLimiters)
        defer { try? FileManager.default.removeItem(at: missing) }
        let noCert = try runProgram(Binaries.gateway.path, ["check", "--config", missing.appendingPathComponent("gateway.toml").path])
        XCTAssertEqual(noCert.status, 1)
        XCTAssertTrue(noCert.output.contains("server.tls.cert: cannot read /nonexistent/gateway.pem"), noCert.output)

        let garbageKey = missing.appendingPathComponent("garbage.key").path
        try "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n".write(toFile: garbageKey, atomically: true, encoding: .utf8)
        let badKey = try directory(gateway: tls(certificates.serverCert, garbageKey), rateSync: GatewayHarness.deploymentLimiters)
        defer { try? FileManager.default.removeItem(at: badKey) }
        let path = badKey.appendingPathComponent("gateway.toml").path
        let checked = try runProgram(Binaries.gateway.path, ["check", "--config", path])
        XCTAssertEqual(checked.status, 1)
        XCTAssertTrue(checked.output.contains("server.tls.key: cannot load a PEM private key"), checked.output)
        let started = try runProgram(Binaries.gateway.path, ["--config", path])
        XCTAssertEqual(started.status, 1)
        XCTAssertTrue(started.output.contains("server.tls.key"), started.output)
    }
}
