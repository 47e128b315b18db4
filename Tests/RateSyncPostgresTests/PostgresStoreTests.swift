import Logging
import NIOCore
import NIOPosix
import RateSync
import TestSupport
import XCTest

@testable import RateSyncPostgres

/// The Postgres store against a real PostgreSQL started for each test, in rate-sync's tables.
final class PostgresStoreTests: XCTestCase {
    private var postgres: PostgresServer!
    private var group: MultiThreadedEventLoopGroup!
    private var stores: [PostgresStore] = []

    override func setUpWithError() throws {
        postgres = try PostgresServer()
        group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    }

    override func tearDownWithError() throws {
        stores.forEach { $0.stop() }
        try group?.syncShutdownGracefully()
        postgres?.stop()
    }

    private func makeStore(autoCreate: Bool = true, url: String? = nil, timeoutMs: Int64 = 1000) throws -> PostgresStore {
        var settings = PostgresStoreSettings(url: try PostgresURL.parse(url ?? postgres.url))
        settings.autoCreate = autoCreate
        let store = try PostgresStore(
            id: "pg",
            settings: settings,
            commandTimeout: .milliseconds(timeoutMs),
            group: group,
            logger: Logger(label: "test")
        )
        stores.append(store)
        return store
    }

    private func limiter(_ id: String, _ algorithm: LimiterConfig.Algorithm, maxConcurrent: Int? = nil) -> LimiterConfig {
        LimiterConfig(id: id, storeID: "pg", algorithm: algorithm, maxConcurrent: maxConcurrent)
    }

    private func decide(_ store: PostgresStore, _ checks: [LimitCheck]) throws -> [Decision] {
        try store.check(checks, on: group.next()).wait()
    }

    func testAutoCreateMakesRateSyncsTables() throws {
        try makeStore().connect().wait()
        let columns = try postgres.sql(
            "SELECT table_name || '.' || column_name FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1"
        )
        XCTAssertEqual(
            columns.split(separator: "\n"),
            [
                "rate_limiter_state.concurrent_count", "rate_limiter_state.group_id", "rate_limiter_state.last_acquisition_at",
                "rate_limiter_state.version", "rate_limiter_state_window.group_id", "rate_limiter_state_window.id",
                "rate_limiter_state_window.timestamp_at",
            ]
        )
    }

    func testWithoutAutoCreateAMissingTableFailsTheStartupCheck() throws {
        XCTAssertThrowsError(try makeStore(autoCreate: false).connect().wait()) { error in
            XCTAssertTrue("\(error)".contains("rate_limiter_state"), "\(error)")
        }
    }

    func testTokenBucketSpacesAdmissionsByTheIntervalLessTheMargin() throws {
        let store = try makeStore()
        try store.connect().wait()
        let bucket = [LimitCheck(limiter: limiter("b", .tokenBucket(TokenBucketRule(ratePerSecond: 2))), identifier: "c")]
        XCTAssertTrue(try decide(store, bucket)[0].allowed)
        let denied = try decide(store, bucket)[0]
        XCTAssertFalse(denied.allowed, "one admission per 0.5 s")
        XCTAssertEqual(denied.retryAfter, 0.49, accuracy: 0.05, "the interval less the 10 ms margin")
        XCTAssertEqual(denied.limit, 1)
        Thread.sleep(forTimeInterval: denied.retryAfter)
        XCTAssertTrue(try decide(store, bucket)[0].allowed)
        XCTAssertEqual(try postgres.sql("SELECT version > 1 FROM rate_limiter_state WHERE group_id = 'b:c'"), "t", "every change bumps the version")
    }

    func testSlidingWindowAndConcurrencyAreAllOrNothing() throws {
        let store = try makeStore()
        try store.connect().wait()
        let window = limiter("w", .slidingWindow(SlidingWindowRule(limit: 3, windowSeconds: 60)))
        let slots = limiter("s", .tokenBucket(nil), maxConcurrent: 2)
        let both = [LimitCheck(limiter: window, identifier: "c"), LimitCheck(limiter: slots, identifier: "c")]
        let first = try decide(store, both)
        XCTAssertEqual(first.map(\.allowed), [true, true])
        XCTAssertEqual(first.map(\.remaining), [2, 1])
        XCTAssertEqual(try decide(store, both).map(\.allowed), [true, true])
        let third = try decide(store, both)
        XCTAssertEqual(third.map(\.allowed), [true, false], "no slot left")
        XCTAssertEqual(try postgres.sql("SELECT count(*) FROM rate_limiter_state_window WHERE group_id = 'w:c'"), "2", "the window spent nothing for the denied request")
        store.release([both[1]])
        _ = try waitUntil("the slot is given back", timeout: 3) {
            try postgres.sql("SELECT concurrent_count FROM rate_limiter_state WHERE group_id = 's:c'") == "1"
        }
        XCTAssertEqual(try decide(store, both).map(\.allowed), [true, true])
        let full = try decide(store, [both[0]])[0]
        XCTAssertFalse(full.allowed)
        XCTAssertEqual(full.retryAfter, 60, accuracy: 2)
    }

    func testAKeyLongerThanRateSyncsColumnIsKeptAsADigest() throws {
        let store = try makeStore()
        try store.connect().wait()
        let window = limiter("w", .slidingWindow(SlidingWindowRule(limit: 1, windowSeconds: 60)))
        let long = String(repeating: "é", count: 260)
        let check = [LimitCheck(limiter: window, identifier: long)]
        XCTAssertTrue(try decide(store, check)[0].allowed)
        XCTAssertFalse(try decide(store, check)[0].allowed, "the same identifier, the same budget")
        XCTAssertTrue(try decide(store, [LimitCheck(limiter: window, identifier: long + "x")])[0].allowed, "another identifier, another budget")
        let ids = try postgres.sql("SELECT group_id FROM rate_limiter_state ORDER BY group_id").split(separator: "\n")
        XCTAssertEqual(ids.count, 2)
        XCTAssertTrue(ids.allSatisfy { $0.hasPrefix("w:sha256:") && $0.count == "w:sha256:".count + 64 }, "\(ids)")
    }

    func testConcurrentRequestsFromManyConnectionsNeverOverspend() throws {
        let store = try makeStore()
        try store.connect().wait()
        let other = try makeStore()
        try other.connect().wait()
        let window = [LimitCheck(limiter: limiter("w", .slidingWindow(SlidingWindowRule(limit: 50, windowSeconds: 60))), identifier: "c")]
        let futures = (0..<200).map { index in
            (index % 2 == 0 ? store : other).check(window, on: group.next())
        }
        let admitted = try futures.map { try $0.wait()[0].allowed }.filter { $0 }.count
        XCTAssertEqual(admitted, 50)
        XCTAssertEqual(try postgres.sql("SELECT count(*) FROM rate_limiter_state_window"), "50")
    }

    func testAWaitingAdmissionIsReservedAheadAndCanBeGivenBack() throws {
        let store = try makeStore()
        try store.connect().wait()
        let window = limiter("w", .slidingWindow(SlidingWindowRule(limit: 1, windowSeconds: 30)))
        var check = LimitCheck(limiter: window, identifier: "c", maxWait: 60)
        XCTAssertEqual(try decide(store, [check])[0].delay, 0)
        let waiting = try decide(store, [check])[0]
        XCTAssertTrue(waiting.allowed)
        XCTAssertEqual(waiting.delay, 30, accuracy: 1)
        XCTAssertEqual(try postgres.sql("SELECT count(*) FROM rate_limiter_state_window WHERE timestamp_at > now() + interval '20 seconds'"), "1")
        check.reservation = waiting.reservation
        try group.next().submit { store.giveBack([check]) }.wait()
        _ = try waitUntil("the reserved entry is removed", timeout: 3) {
            try postgres.sql("SELECT count(*) FROM rate_limiter_state_window") == "1"
        }
        let bucket = limiter("b", .tokenBucket(TokenBucketRule(ratePerSecond: 1)))
        XCTAssertEqual(try decide(store, [LimitCheck(limiter: bucket, identifier: "c", maxWait: 5)])[0].delay, 0)
        let paced = try decide(store, [LimitCheck(limiter: bucket, identifier: "c", maxWait: 5)])[0]
        XCTAssertEqual(paced.delay, 0.99, accuracy: 0.05)
        XCTAssertFalse(try decide(store, [LimitCheck(limiter: bucket, identifier: "c", maxWait: 0.5)])[0].allowed, "beyond the wait allowed")
    }

    func testAnUnreachableServerFailsWithinTheDeadlineAndTheStoreRecovers() throws {
        let store = try makeStore(timeoutMs: 300)
        try store.connect().wait()
        let check = [LimitCheck(limiter: limiter("b", .tokenBucket(TokenBucketRule(ratePerSecond: 1000))), identifier: "x")]
        XCTAssertTrue(try decide(store, check)[0].allowed)
        let port = postgres.port
        postgres.stop()
        let started = Date()
        XCTAssertThrowsError(try decide(store, check)) { XCTAssertTrue($0 is StoreFailure, "\($0)") }
        XCTAssertLessThan(Date().timeIntervalSince(started), 2)
        postgres = try PostgresServer(port: port)
        let recovered = try waitUntil("the store reconnects", timeout: 10) {
            let created = (try? decide(store, check)) != nil
            if !created { try? store.connect().wait() }
            return created
        }
        print("reconnected \(recovered) s after the restart")
    }
}
