import Foundation
import RateSync
import TestSupport
import XCTest

@testable import Gateway

/// Balancing over targets and the standing of each (ejection, active checks): pure values, no
/// sockets.
final class UpstreamTargetTests: XCTestCase {
    private func picks(_ selection: inout TargetSelection, _ count: Int, available: [Bool]? = nil, client: String = "") -> [Int] {
        (0..<count).map { _ in
            selection.choose(
                available: available ?? Array(repeating: true, count: selection.weights.count),
                tried: [],
                busy: { _ in 0 },
                clientHash: TargetSelection.hash(client),
                random: { Int.random(in: 0..<$0) }
            )!
        }
    }

    func testSmoothWeightedRoundRobinInterleaves() {
        var selection = TargetSelection(balance: .roundRobin, weights: [1, 1, 2])
        XCTAssertEqual(picks(&selection, 8), [2, 0, 1, 2, 2, 0, 1, 2], "weights 1, 1, 2: the heavy one every other pick, never twice in a row at first")
        var even = TargetSelection(balance: .roundRobin, weights: [1, 1, 1])
        XCTAssertEqual(picks(&even, 6), [0, 1, 2, 0, 1, 2])
    }

    func testTargetsOutOfRotationAreSkippedUnlessAllAre() {
        var selection = TargetSelection(balance: .roundRobin, weights: [1, 1, 1])
        XCTAssertEqual(Set(picks(&selection, 6, available: [true, false, true])), [0, 2])
        XCTAssertEqual(Set(picks(&selection, 6, available: [false, false, false])), [0, 1, 2], "panic: all of them rather than none")
        let retried = selection.choose(available: [true, true, true], tried: [0, 1], busy: { _ in 0 }, clientHash: 0, random: { _ in 0 })
        XCTAssertEqual(retried, 2, "a retry never goes back to a target it tried")
        XCTAssertNil(selection.choose(available: [true, true, true], tried: [0, 1, 2], busy: { _ in 0 }, clientHash: 0, random: { _ in 0 }))
    }

    func testLeastRequestTakesTheLessBusyOfTwo() {
        var selection = TargetSelection(balance: .leastRequest, weights: [1, 1, 1])
        let busy = [5, 0, 9]
        let chosen = selection.choose(available: [true, true, true], tried: [], busy: { busy[$0] }, clientHash: 0, random: { $0 - 1 })
        XCTAssertEqual(chosen, 1, "of targets 2 and 1 (the random picks), the idle one")
    }

    func testClientIPHashIsStableAndMovesOnlyWhenItsTargetIsOut() {
        var selection = TargetSelection(balance: .clientIPHash, weights: [1, 1, 1])
        for client in ["198.51.100.7", "2001:db8::1", "10.0.0.1"] {
            let usual = Set(picks(&selection, 5, client: client))
            XCTAssertEqual(usual.count, 1)
            let home = usual.first!
            var available = [true, true, true]
            available[home] = false
            XCTAssertFalse(picks(&selection, 5, available: available, client: client).contains(home))
        }
        XCTAssertEqual(TargetSelection.hash("198.51.100.7"), TargetSelection.hash("198.51.100.7"), "the same in every process")
    }

    func testOutlierEjectsAfterConsecutiveFailuresForLongerEachTime() {
        var outlier = OutlierState(GatewayConfig.Upstream.Outlier(consecutiveFailures: 3, ejectSeconds: 10))
        XCTAssertNil(outlier.failure())
        XCTAssertNil(outlier.failure())
        outlier.success()
        XCTAssertNil(outlier.failure(), "a success in between starts the count again")
        XCTAssertNil(outlier.failure())
        XCTAssertEqual(outlier.failure(), 10)
        XCTAssertNil(outlier.failure())
        XCTAssertNil(outlier.failure())
        XCTAssertEqual(outlier.failure(), 20, "doubled after another ejection")
        for _ in 0..<30 { _ = outlier.failure() }
        XCTAssertEqual([outlier.failure(), outlier.failure(), outlier.failure()].compactMap { $0 }, [300], "never beyond 300 s")
        outlier.success()
        _ = outlier.failure()
        _ = outlier.failure()
        XCTAssertEqual(outlier.failure(), 10, "a success resets the doubling")
    }

    func testActiveChecksNeedTheirThresholdsInARow() {
        var state = ActiveHealthState(GatewayConfig.Upstream.HealthCheck(unhealthyThreshold: 2, healthyThreshold: 3))
        XCTAssertNil(state.record(passed: false))
        XCTAssertNil(state.record(passed: true), "a pass breaks the streak")
        XCTAssertNil(state.record(passed: false))
        XCTAssertEqual(state.record(passed: false), false)
        XCTAssertNil(state.record(passed: true))
        XCTAssertNil(state.record(passed: true))
        XCTAssertEqual(state.record(passed: true), true)
    }

    func testTargetsAndTheirSettingsAreRead() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("targets-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try DeploymentFixtures.memoryLimiters.write(to: directory.appendingPathComponent("rate-sync.toml"), atomically: true, encoding: .utf8)
        func load(_ upstream: String) throws -> GatewayConfig.Upstream? {
            let text = "[upstreams.app]\n\(upstream)\n[[routes]]\nname = \"r\"\nupstream = \"app\"\nlimiters = [\"public\"]\n"
            try text.write(to: directory.appendingPathComponent("gateway.toml"), atomically: true, encoding: .utf8)
            return try LoadedConfig.load(gatewayPath: directory.appendingPathComponent("gateway.toml").path, environment: [:]).gateway.upstreams["app"]
        }
        func problems(_ upstream: String) -> [String] {
            do {
                _ = try load(upstream)
                return []
            } catch let error as ConfigError {
                return error.problems.map(\.message)
            } catch {
                return ["\(error)"]
            }
        }
        let upstream = try XCTUnwrap(
            load(
                """
                targets = ["http://10.0.0.1:8081/api", { url = "http://10.0.0.2:8082/api/", weight = 3 }]
                balance = "least_request"
                retries = 2
                [upstreams.app.health_check]
                path = "/ready"
                interval_ms = 500
                [upstreams.app.outlier]
                consecutive_failures = 0
                """
            )
        )
        XCTAssertEqual(upstream.targets, [.init(host: "10.0.0.1", port: 8081), .init(host: "10.0.0.2", port: 8082, weight: 3)])
        XCTAssertEqual(upstream.basePath, "/api")
        XCTAssertEqual(upstream.balance, .leastRequest)
        XCTAssertEqual(upstream.retries, 2)
        XCTAssertEqual(upstream.healthCheck?.path, "/ready")
        XCTAssertEqual(upstream.healthCheck?.intervalMs, 500)
        XCTAssertEqual(upstream.healthCheck?.healthyThreshold, 2)
        XCTAssertNil(upstream.outlier, "consecutive_failures = 0 turns ejection off")
        let single = try XCTUnwrap(load("url = \"http://127.0.0.1:9\""))
        XCTAssertEqual(single.targets, [.init(host: "127.0.0.1", port: 9)])
        XCTAssertEqual(single.outlier, GatewayConfig.Upstream.Outlier(), "ejection on by default")

        XCTAssertEqual(problems("url = \"http://a:1\"\ntargets = [\"http://b:2\"]"), ["give either url or targets, not both"])
        XCTAssertEqual(problems("targets = []"), ["expected a non-empty array of URLs or { url = \"...\", weight = N } tables"])
        XCTAssertEqual(problems("targets = [\"http://a:1\", \"https://b:2\"]"), ["every target must have the same scheme and path (they serve the same requests)"])
        XCTAssertEqual(problems("targets = [{ url = \"http://a:1\", weight = 0 }]"), ["expected a whole number greater than 0, found 0"])
        let grpc = try XCTUnwrap(load("url = \"http://10.0.0.1:50051\"\nprotocol = \"h2\"\ndns_refresh_seconds = 5\nwebsocket_idle_timeout_seconds = 90"))
        XCTAssertEqual(grpc.wireProtocol, .h2)
        XCTAssertEqual(grpc.dnsRefreshSeconds, 5)
        XCTAssertEqual(grpc.websocketIdleTimeoutSeconds, 90)
        XCTAssertEqual(single.wireProtocol, .http1)
        XCTAssertEqual(single.dnsRefreshSeconds, 30)
        XCTAssertNil(single.websocketIdleTimeoutSeconds, "[server] decides")
        XCTAssertEqual(problems("url = \"http://a:1\"\nprotocol = \"h3\""), ["expected \"http1\" or \"h2\", found \"h3\""])
        XCTAssertEqual(problems("url = \"http://a:1\"\ndns_refresh_seconds = -1"), ["expected 0 (look names up only at start) or more, found -1.0"])
        XCTAssertEqual(problems("targets = [\"ftp://a\"]\nbalance = \"random\""), [
            "expected \"round_robin\", \"least_request\" or \"client_ip_hash\", found \"random\"",
            "expected an http:// or https:// URL such as http://127.0.0.1:8081, found \"ftp://a\"",
        ])
    }

    // MARK: names

    func testANameIsOneTargetPerAddressAndANameThatDoesNotResolveStays() {
        let configured: [GatewayConfig.UpstreamTarget] = [
            .init(host: "app.internal", port: 8080, weight: 2),
            .init(host: "10.0.0.9", port: 8080),
            .init(host: "gone.internal", port: 8080),
        ]
        let expanded = HostResolver.expand(configured) { name in
            name == "app.internal" ? ["10.0.0.1", "10.0.0.2"] : []
        }
        XCTAssertEqual(expanded.map(\.address), ["10.0.0.1:8080", "10.0.0.2:8080", "10.0.0.9:8080", "gone.internal:8080"])
        XCTAssertEqual(expanded.map(\.authority), ["app.internal:8080", "app.internal:8080", "10.0.0.9:8080", "gone.internal:8080"], "TLS and Host still name the host")
        XCTAssertEqual(expanded.map(\.weight), [2, 2, 1, 1], "each address carries its name's weight")
        XCTAssertEqual(HostResolver.addresses(of: "127.0.0.1"), ["127.0.0.1"])
        XCTAssertEqual(HostResolver.addresses(of: "no-such-host.invalid"), [])
    }

    func testALookupThatChangesTheAddressesKeepsTheStandingOfThoseThatStay() {
        var answer = ["10.0.0.1", "10.0.0.2"]
        var upstream = GatewayConfig.Upstream(
            name: "app", host: "app.internal", port: 80, basePath: "", connectTimeoutMs: 100, responseTimeoutMs: 100, maxIdleConnections: 1
        )
        upstream.outlier = .init(consecutiveFailures: 1, ejectSeconds: 60)
        let targets = UpstreamTargets(upstream: upstream, metrics: GatewayMetrics(), logger: .init(label: "test")) { _ in answer }
        XCTAssertTrue(targets.hasNames)
        let before = targets.health
        XCTAssertEqual(before.map(\.target.address), ["10.0.0.1:80", "10.0.0.2:80"])
        before[1].recordFailure()
        XCTAssertFalse(before[1].inRotation(), "ejected")

        XCTAssertFalse(targets.update(resolvedTargets: HostResolver.expand(UpstreamTargets.configured(upstream)) { _ in answer }), "the same answer changes nothing")
        XCTAssertEqual(targets.generation, 0)

        answer = ["10.0.0.2", "10.0.0.3"]
        XCTAssertTrue(targets.update(resolvedTargets: HostResolver.expand(UpstreamTargets.configured(upstream)) { _ in answer }))
        XCTAssertEqual(targets.generation, 1, "every loop rebuilds its pools")
        let after = targets.health
        XCTAssertEqual(after.map(\.target.address), ["10.0.0.2:80", "10.0.0.3:80"])
        XCTAssertTrue(after[0] === before[1], "an address that stays keeps its standing")
        XCTAssertFalse(after[0].inRotation())
        XCTAssertTrue(after[1].inRotation(), "a new address starts healthy")
    }
}
