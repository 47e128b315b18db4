import Logging
import NIOCore
import NIOPosix
import RateSync
import TestSupport
import XCTest

@testable import RateSyncRedis

/// One script call per node for the requests of several slots, on a real cluster: exact while
/// a slot migrates (a group whose key left the node is sent again with its keys declared and
/// follows `ASK`), and one call where per-slot calls would have made several.
final class ClusterBatchTests: XCTestCase {
    private var cluster: RedisCluster!
    private var group: MultiThreadedEventLoopGroup!
    private var store: RedisClusterStore!

    override func setUpWithError() throws {
        cluster = try RedisCluster(primaries: 3, replicasPerPrimary: 0)
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let seeds = try cluster.primaryPorts().map { RedisAddress(host: "127.0.0.1", port: $0) }
        store = try RedisClusterStore(
            id: "cluster",
            settings: RedisStoreSettings(url: try RedisURL.parse("redis://127.0.0.1:\(seeds[0].port)")),
            seeds: seeds,
            commandTimeout: .seconds(2),
            breakerThreshold: 5,
            breakerTimeout: 10,
            group: group,
            logger: Logger(label: "test")
        )
        try store.connect().wait()
    }

    override func tearDownWithError() throws {
        store?.stop()
        try group?.syncShutdownGracefully()
        cluster?.stop()
    }

    private let window = LimiterConfig(
        id: "w",
        storeID: "cluster",
        algorithm: .slidingWindow(SlidingWindowRule(limit: 2, windowSeconds: 60))
    )

    private func windowKey(_ identifier: String) -> String {
        "rate_limit:w:{\(identifier)}:window"
    }

    /// The requests of `identifiers`, checked in one event-loop tick: whether each was admitted,
    /// and how many requests its window has left.
    private func checkTogether(_ identifiers: [String]) throws -> [String] {
        let loop = group.next()
        let store = self.store!
        let window = self.window
        let decisions = try loop.flatSubmit {
            EventLoopFuture.whenAllSucceed(
                identifiers.map { store.check([LimitCheck(limiter: window, identifier: $0)], on: loop) },
                on: loop
            )
        }.wait()
        return decisions.map { "\($0[0].allowed ? "admitted" : "denied") \($0[0].remaining) left" }
    }

    private func scriptCalls(on node: RedisServer) throws -> Int {
        try node.calls(of: "evalsha") + node.calls(of: "eval")
    }

    func testOneCallPerNodeStaysExactWhileASlotMigrates() throws {
        // Three identifiers of three different slots, all served by one node.
        var identifiers: [String] = []
        var node: RedisServer?
        for candidate in (0..<2000).map({ "client-\($0)" }) {
            let slot = try cluster.slot(of: windowKey(candidate))
            guard let owner = try cluster.owner(of: slot) else { continue }
            if node == nil { node = owner }
            if owner.port == node?.port, !(try identifiers.contains { try cluster.slot(of: windowKey($0)) == slot }) {
                identifiers.append(candidate)
            }
            if identifiers.count == 3 { break }
        }
        let source = try XCTUnwrap(node)
        XCTAssertEqual(identifiers.count, 3)

        let before = try scriptCalls(on: source)
        XCTAssertEqual(try checkTogether(identifiers), Array(repeating: "admitted 1 left", count: 3))
        let calls = try scriptCalls(on: source) - before
        XCTAssertLessThanOrEqual(calls, 2, "one call for three slots (two when the script was not loaded yet)")

        // The first identifier's slot starts moving to another node, its key already there.
        let moving = try cluster.slot(of: windowKey(identifiers[0]))
        let target = try XCTUnwrap(cluster.nodes.first { $0.port != source.port && (try? $0.cli(["ROLE"]).hasPrefix("master")) == true })
        _ = try target.cli(["CLUSTER", "SETSLOT", String(moving), "IMPORTING", try cluster.nodeID(of: source)])
        _ = try source.cli(["CLUSTER", "SETSLOT", String(moving), "MIGRATING", try cluster.nodeID(of: target)])
        _ = try source.cli(["MIGRATE", "127.0.0.1", String(target.port), "", "0", "5000", "KEYS", windowKey(identifiers[0])])
        XCTAssertEqual(try source.cli(["CLUSTER", "COUNTKEYSINSLOT", String(moving)]), "0")

        // The node's call cannot reach the moved key: that request is sent again alone and
        // follows ASK; the others are decided in the node's call.
        let (sourceBefore, targetBefore) = (try scriptCalls(on: source), try scriptCalls(on: target))
        XCTAssertEqual(try checkTogether(identifiers), Array(repeating: "admitted 0 left", count: 3), "the moved key was counted where it is now")
        XCTAssertEqual(try scriptCalls(on: source) - sourceBefore, 1, "the node's one call ran there (a redirection is no call)")
        XCTAssertGreaterThanOrEqual(try scriptCalls(on: target) - targetBefore, 1, "the moved request ran where its key is")
        XCTAssertEqual(try source.cli(["CLUSTER", "COUNTKEYSINSLOT", String(moving)]), "0", "nothing was created where it left")
        XCTAssertEqual(try checkTogether(identifiers), Array(repeating: "denied 0 left", count: 3), "the limit of 2 holds for each")

        for node in [source, target] {
            _ = try node.cli(["CLUSTER", "SETSLOT", String(moving), "NODE", try cluster.nodeID(of: target)])
        }
        XCTAssertEqual(try target.cli(["ZCARD", windowKey(identifiers[0])]), "2")
        for identifier in identifiers.dropFirst() {
            XCTAssertEqual(try source.cli(["ZCARD", windowKey(identifier)]), "2")
        }
    }
}
