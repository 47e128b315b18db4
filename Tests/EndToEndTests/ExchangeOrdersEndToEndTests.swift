import Foundation
import TestSupport
import XCTest

/// Random orders of an exchange's events through the real gateway, the one place its handler's
/// own glue meets them: clients that pipeline, pause, give up and leave, targets that answer
/// late, early, in chunks, or close instead (Tests/interop/exchange_orders.py, whose oracle
/// checks both hops: every answer its own request's, every body read whole and once, no
/// request lost without the close announced, the limiter's slots all back at the end).
/// `ExchangeSequenceTests` plays the same kinds of events on the state machine alone; these
/// play them over HTTP/1.1 and HTTP/2.
final class ExchangeOrdersEndToEndTests: XCTestCase {
    private var harness: GatewayHarness?
    private var redis: RedisServer?

    override func tearDownWithError() throws {
        harness?.stop()
        redis?.stop()
    }

    private static let slots = 16

    private static func limiters(store: String) -> String {
        """
        \(store)
        [limiters.w]
        store = "s"
        algorithm = "sliding_window"
        limit = 1000000
        window_seconds = 60
        [limiters.c]
        store = "s"
        max_concurrent = \(slots)
        """
    }

    /// Plays `seeds` against a gateway whose one route, `/orders/`, goes to two targets the
    /// script serves, through a sliding window and a max_concurrent limiter on `store`.
    /// - Parameter http2: clients speak HTTP/2 (cleartext, prior knowledge), their requests
    ///   streams of one connection, four connections at a time (so never more requests at once
    ///   than the limiter has slots); the `h2` library comes with scripts/test.sh's Python.
    private func play(store: String, seeds: [Int], http2: Bool = false) throws {
        var python = "python3"
        if http2 {
            guard let withLibraries = ProcessInfo.processInfo.environment["RATESYNC_PYTHON"] else {
                throw XCTSkip("RATESYNC_PYTHON is not set: scripts/test.sh sets it up with h2")
            }
            python = withLibraries
        }
        let targets = [try unusedPort(), try unusedPort()]
        let harness = try GatewayHarness(
            rateSync: Self.limiters(store: store),
            routes: """
                [[routes]]
                name = "orders"
                path_prefix = "/orders/"
                upstream = "app"
                limiters = ["w", "c"]
                identifier = "client_ip"
                """,
            server: http2 ? "h2c = true" : "",
            // Targets that close on purpose are not ejected for it: both stay in rotation.
            upstream: "[upstreams.app.outlier]\nconsecutive_failures = 0",
            upstreamTargets: "[" + targets.map { "\"http://127.0.0.1:\($0)\"" }.joined(separator: ", ") + "]"
        )
        self.harness = harness
        for seed in seeds {
            let run = try runProgram(
                "/usr/bin/env",
                [python, interopScript("exchange_orders.py"), String(harness.proxyPort)] + targets.map(String.init)
                    + [String(seed), "300", http2 ? "4" : "8", String(Self.slots), http2 ? "h2" : "http1"],
                stdoutOnly: false
            )
            print("exchange orders, seed \(seed): \(run.output.split(separator: "\n").first ?? "")")
            XCTAssertEqual(run.status, 0, "seed \(seed): \(run.output)")
        }
        let deadline = Date().addingTimeInterval(5)
        var inFlight = try harness.metric("ratesync_requests_in_flight")
        while inFlight != 0, Date() < deadline {
            usleep(50_000)
            inFlight = try harness.metric("ratesync_requests_in_flight")
        }
        XCTAssertEqual(inFlight, 0, "every exchange ended")
    }

    /// On the memory store, whose verdicts come at once.
    func testEveryOrderOfEventsKeepsEachAnswerWithItsRequest() throws {
        try play(store: "[stores.s]\nengine = \"memory\"", seeds: [1, 2, 3])
    }

    /// On Redis, whose verdicts come later: bodies wait for them, clients leave meanwhile.
    func testEveryOrderOfEventsKeepsEachAnswerWithItsRequestWhileTheLimiterDecides() throws {
        let redis = try RedisServer()
        self.redis = redis
        try play(store: "[stores.s]\nengine = \"redis\"\nurl = \"\(redis.url)\"", seeds: [4, 5])
    }

    /// The same over HTTP/2: each request a stream, a connection's streams at once, streams
    /// reset by the client halfway through a body or once the answer begins.
    func testEveryOrderOfEventsKeepsEachAnswerWithItsStream() throws {
        try play(store: "[stores.s]\nengine = \"memory\"", seeds: [6, 7], http2: true)
    }
}
