import Foundation
import TestSupport
import XCTest

/// `max_concurrent` slots held on leases: a gateway killed while holding slots gives them back
/// within `lease_seconds`, and a live gateway's long request keeps its slot.
final class LeaseEndToEndTests: XCTestCase {
    private var redis: RedisServer!
    private var harness: GatewayHarness!

    override func setUpWithError() throws {
        redis = try RedisServer()
        harness = try GatewayHarness(
            rateSync: """
                [stores.redis]
                engine = "redis"
                url = "${REDIS_URL}"
                [limiters.one_at_a_time]
                store = "redis"
                max_concurrent = 1
                """,
            routes: """
                [[routes]]
                name = "export"
                upstream = "app"
                limiters = ["one_at_a_time"]
                """,
            gatewayExtras: """
                [limiters.one_at_a_time]
                lease_seconds = 2
                """,
            environment: ["REDIS_URL": redis.url]
        )
    }

    override func tearDownWithError() throws {
        harness?.stop()
        redis?.stop()
    }

    private func slowRequest(port: Int, milliseconds: Int) throws -> ChildProcess {
        try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/curl"),
            ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "30", "http://127.0.0.1:\(port)/slow?delay_ms=\(milliseconds)"]
        )
    }

    func testAKilledGatewaysSlotComesBackWithinItsLeaseAndALiveOneKeepsItsSlot() throws {
        let survivor = try harness.startAnotherGateway()
        func status(_ port: Int) throws -> Int { try curl(["-o", "/dev/null", "http://127.0.0.1:\(port)/x"]).status }

        let held = try slowRequest(port: harness.proxyPort, milliseconds: 20_000)
        _ = try waitUntil("the first gateway holds the slot", timeout: 5) {
            try redis.cli(["GET", "rate_limit:one_at_a_time:127.0.0.1:concurrent"]) == "1"
        }
        XCTAssertEqual(try status(survivor), 429, "one at a time")
        kill(harness.gateway.pid, SIGKILL)
        let reclaimed = try waitUntil("the dead gateway's slot comes back", timeout: 10) { try status(survivor) == 200 }
        print("a killed gateway's slot came back \(reclaimed) s after the kill (lease 2 s)")
        XCTAssertLessThan(reclaimed, 3, "within the lease, not the key's hour")
        _ = try? held.waitForExit(timeout: 5)

        // A request that lasts longer than its lease keeps the slot: it is renewed.
        let long = try slowRequest(port: survivor, milliseconds: 5_000)
        _ = try waitUntil("the survivor holds the slot", timeout: 5) {
            try redis.cli(["GET", "rate_limit:one_at_a_time:127.0.0.1:concurrent"]) == "1"
        }
        Thread.sleep(forTimeInterval: 3.5)
        XCTAssertEqual(try status(survivor), 429, "still held past its 2 s lease")
        XCTAssertEqual(try long.waitForExit(timeout: 10), 0)
        XCTAssertEqual(long.text, "200")
        _ = try waitUntil("the slot is given back when the request ends", timeout: 3) { try status(survivor) == 200 }
        _ = try waitUntil("no lease is left behind", timeout: 3) {
            try redis.cli(["ZCARD", "rate_limit:one_at_a_time:127.0.0.1:leases"]) == "0"
        }
    }
}
