import Foundation
import TestSupport
import XCTest

/// A real Redis Cluster (three primaries, three replicas): exact limits across gateways and
/// slots, a primary killed under load, and slots resharded under load.
final class ClusterEndToEndTests: XCTestCase {
    private var cluster: RedisCluster!
    private var harness: GatewayHarness!

    override func setUpWithError() throws {
        cluster = try RedisCluster()
    }

    override func tearDownWithError() throws {
        harness?.stop()
        cluster?.stop()
    }

    private func startGateway(limiters: String, routes: String, breakerThreshold: Int = 5) throws {
        let seeds = try cluster.primaryPorts().sorted().map { "\"127.0.0.1:\($0)\"" }.joined(separator: ", ")
        harness = try GatewayHarness(
            rateSync: """
                [stores.redis]
                engine = "redis"
                mode = "cluster"
                nodes = [\(seeds)]
                socket_timeout = 2
                socket_connect_timeout = 1
                \(limiters)
                """,
            routes: routes,
            gatewayExtras: """
                [stores.redis]
                command_timeout_ms = 300
                circuit_breaker = { threshold = \(breakerThreshold), timeout = 1 }
                """
        )
    }

    private func window(_ name: String, limit: Int, failClosed: Bool = true) -> String {
        """

        [limiters.\(name)]
        store = "redis"
        algorithm = "sliding_window"
        limit = \(limit)
        window_seconds = 60
        fail_closed = \(failClosed)
        """
    }

    private func route(_ name: String, _ limiters: [String]) -> String {
        """

        [[routes]]
        name = "\(name)"
        path_prefix = "/\(name)"
        upstream = "app"
        limiters = [\(limiters.map { "\"\($0)\"" }.joined(separator: ", "))]
        identifier = "query:u"
        """
    }

    /// `count` identifiers, at least `perNode` of them in each primary's slots.
    private func identifiers(perNode: Int) throws -> [String] {
        var byNode: [Int: [String]] = [:]
        var index = 0
        while byNode.count < 3 || byNode.values.contains(where: { $0.count < perNode }) {
            let id = "client-\(index)"
            index += 1
            guard let owner = try cluster.owner(of: try cluster.slot(of: id)) else { continue }
            if byNode[owner.port, default: []].count < perNode { byNode[owner.port, default: []].append(id) }
        }
        return byNode.values.flatMap { $0 }.sorted()
    }

    /// Sends the URLs through curl (one process, one connection at a time), returning each
    /// answer's status and URL.
    private func send(_ urls: [String]) throws -> ChildProcess {
        try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/curl"),
            ["-s", "--max-time", "5", "-w", "%{http_code} %{url_effective}\\n"] + urls.flatMap { ["-o", "/dev/null", $0] }
        )
    }

    private func statuses(_ process: ChildProcess) throws -> [(status: Int, url: String)] {
        _ = try process.waitForExit(timeout: 120)
        return process.text.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ")
            guard parts.count == 2, let status = Int(parts[0]) else { return nil }
            return (status, String(parts[1]))
        }
    }

    func testThreeGatewaysAdmitExactlyTheLimitOfEveryIdentifierInEverySlotRange() throws {
        try startGateway(
            limiters: window("single", limit: 10) + window("wide", limit: 10) + window("narrow", limit: 3),
            routes: route("single", ["single"]) + route("pair", ["wide", "narrow"])
        )
        let ports = [harness.proxyPort, try harness.startAnotherGateway(), try harness.startAnotherGateway()]
        let ids = try identifiers(perNode: 4)
        // Every gateway sends 5 requests per identifier on each route, over two connections at
        // once (so that one event-loop tick holds several slots' requests), all three at once.
        let loads = try ports.flatMap { port in
            try [3, 2].map { repeats in
                try send(ids.shuffled().flatMap { id in
                    (0..<repeats).flatMap { _ in ["http://127.0.0.1:\(port)/single?u=\(id)", "http://127.0.0.1:\(port)/pair?u=\(id)"] }
                })
            }
        }
        var admitted: [String: Int] = [:]
        var total = 0
        for load in loads {
            for (status, url) in try statuses(load) {
                total += 1
                XCTAssertTrue(status == 200 || status == 429, "\(status) for \(url)")
                if status == 200 { admitted[url.replacingOccurrences(of: "http://127.0.0.1", with: "").split(separator: "/", maxSplits: 1).last.map(String.init) ?? url, default: 0] += 1 }
            }
        }
        XCTAssertEqual(total, ids.count * 2 * 5 * 3, "every request answered")
        for id in ids {
            XCTAssertEqual(admitted["single?u=\(id)"], 10, "\(id): exactly its limit over three gateways")
            XCTAssertEqual(admitted["pair?u=\(id)"], 3, "\(id): the tighter of two limiters")
            // The wider limiter of the pair spent only what the pair admitted: all or nothing.
            let owner = try XCTUnwrap(try cluster.owner(of: try cluster.slot(of: id)))
            XCTAssertEqual(try owner.cli(["ZCARD", "rate_limit:wide:{\(id)}:window"]), "3", id)
            XCTAssertEqual(try owner.cli(["ZCARD", "rate_limit:single:{\(id)}:window"]), "10", id)
        }
        for port in try cluster.primaryPorts() {
            // Two event loops per gateway: a connection each to every primary.
            XCTAssertEqual(try harness.metric("ratesync_redis_node_connections", ["node": "127.0.0.1:\(port)"]), 2)
        }
        let health = try curl(["\(harness.admin)/health/rate-limiter"])
        XCTAssertEqual(health.status, 200, health.text)
        for port in try cluster.primaryPorts() {
            XCTAssertTrue(health.text.contains("\"127.0.0.1:\(port)\":{\"breaker\":\"closed\"}"), health.text)
        }
    }

    func testAPrimaryKilledUnderLoadFailsOnlyItsSlotsUntilItsReplicaTakesOver() throws {
        try startGateway(limiters: window("calls", limit: 1_000_000), routes: route("calls", ["calls"]), breakerThreshold: 3)
        let ids = try identifiers(perNode: 2)
        let victim = try XCTUnwrap(try cluster.owner(of: try cluster.slot(of: ids[0])))
        let onVictim = try ids.filter { try cluster.owner(of: try cluster.slot(of: $0))?.port == victim.port }
        let elsewhere = ids.filter { !onVictim.contains($0) }
        let replica = try XCTUnwrap(cluster.nodes.first { (try? $0.cli(["INFO", "replication"]).contains("master_port:\(victim.port)")) ?? false })
        let base = harness.base
        func status(_ id: String) throws -> Int { try curl(["-o", "/dev/null", "\(base)/calls?u=\(id)"]).status }
        XCTAssertTrue(try ids.allSatisfy { try status($0) == 200 })

        // Steady load on the identifiers of the other nodes, through the kill.
        let load = try send((0..<300).map { "\(base)/calls?u=\(elsewhere[$0 % elsewhere.count])" })
        usleep(300_000)
        kill(victim.process.pid, SIGKILL)
        usleep(300_000)
        XCTAssertEqual(try status(onVictim[0]), 503, "the dead node's identifiers get their fail policy")
        XCTAssertEqual(try status(elsewhere[0]), 200, "the others are decided as usual")

        // The replica is promoted by the cluster; from then on the gateway decides its slots again.
        try waitUntil("the replica is promoted", timeout: 15) { try replica.cli(["ROLE"]).hasPrefix("master") }
        let promoted = Date()
        var decidedAgain: Date?
        while decidedAgain == nil && Date().timeIntervalSince(promoted) < 5 {
            if try status(onVictim[0]) == 200 { decidedAgain = Date() } else { usleep(50_000) }
        }
        let after = try XCTUnwrap(decidedAgain, "decided again after the promotion")
        print("the dead primary's identifiers were decided again \(after.timeIntervalSince(promoted)) s after its replica's promotion")
        XCTAssertLessThan(after.timeIntervalSince(promoted), 2)
        XCTAssertEqual(try replica.cli(["EXISTS", "rate_limit:calls:{\(onVictim[0])}:window"]), "1", "on the promoted replica")

        let results = try statuses(load)
        XCTAssertEqual(results.count, 300, "every request answered")
        XCTAssertTrue(results.allSatisfy { $0.status == 200 }, "other nodes' identifiers unaffected: \(Set(results.map(\.status)))")
    }

    func testSlotsReshardedUnderLoadGiveNoErrorAndNoOverAdmission() throws {
        try startGateway(limiters: window("calls", limit: 8), routes: route("calls", ["calls"]))
        let ids = (0..<200).map { "reshard-\($0)" }
        let source = try XCTUnwrap(try cluster.owner(of: 0))
        let target = try XCTUnwrap(try cluster.primaryPorts().first { $0 != source.port }.flatMap { port in cluster.nodes.first { $0.port == port } })
        let ports = [harness.proxyPort, try harness.startAnotherGateway()]
        // Twelve requests per identifier over two gateways while 1,000 slots move.
        let loads = try ports.map { port in
            try send((0..<6).flatMap { _ in ids.map { "http://127.0.0.1:\(port)/calls?u=\($0)" } })
        }
        let reshard = try runProgram(
            "/usr/bin/redis-cli",
            [
                "--cluster", "reshard", "127.0.0.1:\(source.port)", "--cluster-from", try cluster.nodeID(of: source),
                "--cluster-to", try cluster.nodeID(of: target), "--cluster-slots", "1000", "--cluster-yes",
            ],
            stdoutOnly: true
        )
        XCTAssertTrue(reshard.output.contains("Moving slot"), reshard.output)
        var admitted: [String: Int] = [:]
        var total = 0
        for load in loads {
            for (status, url) in try statuses(load) {
                total += 1
                XCTAssertTrue(status == 200 || status == 429, "no error during the reshard: \(status) for \(url)")
                if status == 200, let id = url.split(separator: "=").last { admitted[String(id), default: 0] += 1 }
            }
        }
        XCTAssertEqual(total, ids.count * 12)
        for id in ids { XCTAssertEqual(admitted[id], 8, "\(id): exactly its limit") }
        XCTAssertEqual(try cluster.owner(of: 0)?.port, target.port, "slot 0 moved")
        XCTAssertGreaterThan(try harness.metric("ratesync_redis_redirects_total", ["kind": "moved"]) ?? 0, 0, "the gateway followed MOVED")
    }
}
