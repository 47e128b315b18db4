import Foundation
import TestSupport
import XCTest

/// rate-sync's `timeout` across three gateways on one Redis: a request its limiter would deny
/// waits for a slot reserved atomically in Redis (so the pace is exact whichever gateway it
/// reaches), up to the timeout; beyond it, 429 at once.
final class WaitingEndToEndTests: XCTestCase {
    private var redis: RedisServer!
    private var harness: GatewayHarness!

    override func setUpWithError() throws {
        redis = try RedisServer()
        harness = try GatewayHarness(
            rateSync: """
                [stores.redis]
                engine = "redis"
                url = "${REDIS_URL}"
                [limiters.paced]
                store = "redis"
                rate_per_second = 10
                timeout = 2
                [limiters.paced_briefly]
                store = "redis"
                rate_per_second = 10
                timeout = 1
                [limiters.window]
                store = "redis"
                algorithm = "sliding_window"
                limit = 1
                window_seconds = 3
                timeout = 3
                """,
            routes: """
                [[routes]]
                name = "briefly"
                path_prefix = "/briefly"
                upstream = "app"
                limiters = ["paced_briefly"]
                [[routes]]
                name = "window"
                path_prefix = "/window"
                upstream = "app"
                limiters = ["window"]
                [[routes]]
                name = "paced"
                upstream = "app"
                limiters = ["paced"]
                """,
            server: "max_waiting = 40",
            gatewayExtras: """
                [limiters.paced]
                burst = 1
                [limiters.paced_briefly]
                burst = 1
                """,
            environment: ["REDIS_URL": redis.url]
        )
    }

    override func tearDownWithError() throws {
        harness?.stop()
        redis?.stop()
    }

    /// (status, seconds until the answer) of `count` simultaneous requests over `ports`.
    private func simultaneous(_ count: Int, path: String, ports: [Int]) throws -> [(status: Int, seconds: Double)] {
        let result = try runProgram(
            "/usr/bin/env",
            ["python3", interopScript("simultaneous_requests.py"), String(count), path] + ports.map(String.init),
            stdoutOnly: true
        )
        let rows = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [[Double]], result.output)
        return rows.map { (Int($0[0]), $0[1]) }
    }

    /// No admission sooner than the rate allows: the k-th answer (from 0) at least k intervals
    /// after the moment the requests were sent, the first slot being no earlier than that.
    /// Each answer is compared with the moment, not with the answers before it: an answer that
    /// comes late (a timer, a round trip, a busy machine) moves only itself, where compared with
    /// the next one it read as two admissions too close together.
    private func assertPaced(_ times: [Double], interval: Double, file: StaticString = #filePath, line: UInt = #line) {
        let sorted = times.sorted()
        // Each answer comes a little after its slot; slots never come early.
        let jitter = 0.05
        for (k, time) in sorted.enumerated() {
            XCTAssertGreaterThanOrEqual(time, Double(k) * interval - jitter, "answer \(k) of \(sorted)", file: file, line: line)
        }
    }

    func testSimultaneousRequestsOverThreeGatewaysAreAllAnsweredPacedByTheRate() throws {
        let ports = [harness.proxyPort, try harness.startAnotherGateway(), try harness.startAnotherGateway()]
        let answers = try simultaneous(20, path: "/paced", ports: ports)
        print("timeout = 2, 20 requests: \(answers.map { String(format: "%d@%.3f", $0.status, $0.seconds) })")
        XCTAssertEqual(answers.map(\.status), Array(repeating: 200, count: 20), "every slot comes within the 2 s timeout")
        let times = answers.map(\.seconds)
        assertPaced(times, interval: 0.1)
        let last = try XCTUnwrap(times.max())
        XCTAssertGreaterThanOrEqual(last, 1.85, "the 20th slot of 10/s is 1.9 s after the first")
        XCTAssertLessThan(last, 3, "about 2 s")
    }

    func testBeyondTheTimeoutTheRestAreDeniedAtOnce() throws {
        let ports = [harness.proxyPort, try harness.startAnotherGateway(), try harness.startAnotherGateway()]
        let answers = try simultaneous(20, path: "/briefly", ports: ports)
        print("timeout = 1, 20 requests: \(answers.map { String(format: "%d@%.3f", $0.status, $0.seconds) })")
        let admitted = answers.filter { $0.status == 200 }
        let denied = answers.filter { $0.status == 429 }
        XCTAssertEqual(admitted.count + denied.count, 20)
        XCTAssertTrue((10...12).contains(admitted.count), "the slots within 1 s: now and every 0.1 s up to 1 s")
        assertPaced(admitted.map(\.seconds), interval: 0.1)
        XCTAssertLessThan(denied.map(\.seconds).max() ?? 0, 0.5, "a request with no slot within its timeout is not kept waiting")
    }

    func testAClientThatLeavesWhileWaitingGivesItsReservationBack() throws {
        let windowKey = "rate_limit:window:127.0.0.1:window"
        XCTAssertEqual(try curl(["-o", "/dev/null", "\(harness.base)/window"]).status, 200)
        // The next slot is 3 s ahead: this client waits for it, then gives up after 0.5 s.
        let leaver = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/curl"),
            ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "1.5", "\(harness.base)/window"]
        )
        _ = try waitUntil("the waiting admission holds its entry, 3 s ahead", timeout: 1) {
            try redis.cli(["ZCARD", windowKey]) == "2"
        }
        XCTAssertEqual(try harness.metric("ratesync_waiting_requests"), 1)
        _ = try leaver.waitForExit(timeout: 5)
        XCTAssertEqual(leaver.text, "000", "no answer while waiting")
        _ = try waitUntil("the waiting admission's entry is removed from the window", timeout: 3) {
            try redis.cli(["ZCARD", windowKey]) == "1"
        }
        XCTAssertEqual(try harness.metric("ratesync_waiting_requests"), 0, "its place among the waiting is free again")
    }

    func testWaitingRequestsAreBoundedAndTheRestAnsweredAtOnce() throws {
        harness.stop()
        harness = try GatewayHarness(
            rateSync: """
                [stores.redis]
                engine = "redis"
                url = "${REDIS_URL}"
                [limiters.slow]
                store = "redis"
                rate_per_second = 2
                timeout = 5
                """,
            routes: """
                [[routes]]
                name = "slow"
                upstream = "app"
                limiters = ["slow"]
                """,
            server: "max_waiting = 2",
            gatewayExtras: """
                [limiters.slow]
                burst = 1
                """,
            environment: ["REDIS_URL": redis.url]
        )
        let answers = try simultaneous(6, path: "/slow", ports: [harness.proxyPort])
        print("max_waiting = 2, 6 requests: \(answers.map { String(format: "%d@%.3f", $0.status, $0.seconds) })")
        // A place is held from the store's answer until the forward, so a request admitted at
        // once holds one for a moment too: at most two wait, and at least one does.
        let admitted = answers.filter { $0.status == 200 }
        let waited = admitted.filter { $0.seconds > 0.3 }
        XCTAssertTrue((1...2).contains(waited.count), "\(answers)")
        XCTAssertEqual(admitted.count, waited.count + 1, "one now, the others after waiting")
        let denied = answers.filter { $0.status == 429 }
        XCTAssertEqual(denied.count, 6 - admitted.count, "no place to wait: denied")
        XCTAssertLessThan(denied.map(\.seconds).max() ?? 0, 0.3, "at once")
    }
}
