import RateSync
import XCTest

@testable import RateSyncRedis

/// Slots, hash tags, the slot map and redirections, without a cluster.
final class ClusterRoutingTests: XCTestCase {
    func testSlotsAreRedisOwn() {
        // Values from the Redis Cluster specification and from CLUSTER KEYSLOT.
        XCTAssertEqual(ClusterSlot.of("123456789"), 0x31C3 % 16384)
        XCTAssertEqual(ClusterSlot.of("foo"), 12182)
        XCTAssertEqual(ClusterSlot.of("bar"), 5061)
        XCTAssertEqual(ClusterSlot.of("{user1000}.following"), ClusterSlot.of("{user1000}.followers"))
        XCTAssertEqual(ClusterSlot.of("{user1000}.following"), ClusterSlot.of("user1000"))
        XCTAssertEqual(ClusterSlot.of("foo{}{bar}"), ClusterSlot.of("foo{}{bar}"), "an empty tag is no tag: the whole key")
        XCTAssertNotEqual(ClusterSlot.of("foo{}{bar}"), ClusterSlot.of("bar"))
        XCTAssertEqual(ClusterSlot.of("foo{{bar}}zap"), ClusterSlot.of("{bar"))
        XCTAssertEqual(ClusterSlot.of("foo{bar}{zap}"), ClusterSlot.of("bar"))
    }

    func testEveryKeyOfOneRequestIsInOneSlot() {
        let window = LimiterConfig(id: "auth", storeID: "r", algorithm: .slidingWindow(SlidingWindowRule(limit: 1, windowSeconds: 1)), maxConcurrent: 2)
        let bucket = LimiterConfig(id: "public", storeID: "r", algorithm: .tokenBucket(TokenBucketRule(ratePerSecond: 1)))
        for identifier in ["10.0.0.1", "a}b", "{x}", "", "2001:db8::7", "sha256:abc"] {
            let checks = [LimitCheck(limiter: window, identifier: identifier), LimitCheck(limiter: bucket, identifier: identifier)]
            let (keys, _) = LimitScript.keysAndArguments(groups: [checks], keyPrefix: "rate_limit", uniqueToken: "t", hashTagged: true)
            XCTAssertEqual(Set(keys.map(ClusterSlot.of)).count, 1, "\(identifier): \(keys)")
            XCTAssertEqual(ClusterSlot.of(LimitScript.clusterBase(checks[0], keyPrefix: "rate_limit")), ClusterSlot.of(keys[0]))
            XCTAssertEqual(LimitScript.clusterSlot(checks[0], keyPrefix: "rate_limit"), ClusterSlot.of(keys[0]), "\(identifier): the slot without the key")
        }
        let (keys, _) = LimitScript.keysAndArguments(
            groups: [[LimitCheck(limiter: window, identifier: "10.0.0.1")]],
            keyPrefix: "rate_limit",
            uniqueToken: "t",
            hashTagged: true
        )
        XCTAssertEqual(
            keys,
            ["rate_limit:auth:{10.0.0.1}:window", "rate_limit:auth:{10.0.0.1}:concurrent", "rate_limit:auth:{10.0.0.1}:leases"]
        )
    }

    /// An identifier is its bytes: one that opens with a combining mark (which would join the
    /// colon before it into one Character) keeps it, in both layouts, and its slot is its keys'.
    func testAnIdentifierOpeningWithACombiningMarkKeepsItInEveryKey() {
        let window = LimiterConfig(id: "auth", storeID: "r", algorithm: .slidingWindow(SlidingWindowRule(limit: 1, windowSeconds: 1)))
        for mark in ["\u{301}", "\u{200D}", "\u{FE0F}", "\u{1F3FB}"] {
            let marked = LimitCheck(limiter: window, identifier: mark + "x")
            let plain = LimitCheck(limiter: window, identifier: "x")
            for hashTagged in [false, true] {
                let key = { (check: LimitCheck) in
                    LimitScript.keysAndArguments(groups: [[check]], keyPrefix: "rate_limit", uniqueToken: "t", hashTagged: hashTagged).keys[0]
                }
                XCTAssertEqual(
                    Array(key(marked).utf8),
                    Array((hashTagged ? "rate_limit:auth:{\(mark)x}:window" : "rate_limit:auth:\(mark)x:window").utf8)
                )
                XCTAssertNotEqual(Array(key(marked).utf8), Array(key(plain).utf8))
            }
            XCTAssertEqual(LimitScript.clusterSlot(marked, keyPrefix: "rate_limit"), ClusterSlot.of(LimitScript.clusterBase(marked, keyPrefix: "rate_limit")))
            XCTAssertEqual(LimitScript.clusterSlot(marked, keyPrefix: "rate_limit"), ClusterSlot.of(hashTag: Substring(mark + "x")))
        }
    }

    func testTheSlotMapAndRedirections() throws {
        let reply = RedisValue.array([
            .array([.integer(0), .integer(5460), .array([.bulkString("127.0.0.1"), .integer(7000), .bulkString("id1")]),
                .array([.bulkString("127.0.0.1"), .integer(7003), .bulkString("id4")])]),
            .array([.integer(5461), .integer(16383), .array([.bulkString(""), .integer(7001), .bulkString("id2")])]),
        ])
        var map = try XCTUnwrap(SlotMap(clusterSlots: reply, fallbackHost: "10.1.1.1"))
        XCTAssertEqual(map.owner(of: 0), RedisAddress(host: "127.0.0.1", port: 7000))
        XCTAssertEqual(map.owner(of: 5460), RedisAddress(host: "127.0.0.1", port: 7000))
        XCTAssertEqual(map.owner(of: 5461), RedisAddress(host: "10.1.1.1", port: 7001), "an unannounced host is the one asked")
        XCTAssertEqual(map.primaries.count, 2)
        map.move(3, to: RedisAddress(host: "127.0.0.1", port: 7002))
        XCTAssertEqual(map.owner(of: 3)?.port, 7002)
        XCTAssertNil(SlotMap(clusterSlots: .array([.array([.integer(0), .integer(99_999), .array([])])]), fallbackHost: "x"))
        XCTAssertNil(SlotMap(clusterSlots: .error("ERR"), fallbackHost: "x"))

        XCTAssertEqual(ClusterRedirect("MOVED 3999 127.0.0.1:6381"), .moved(slot: 3999, to: RedisAddress(host: "127.0.0.1", port: 6381)))
        XCTAssertEqual(ClusterRedirect("ASK 3999 ::1:6381"), .ask(slot: 3999, to: RedisAddress(host: "::1", port: 6381)))
        XCTAssertNil(ClusterRedirect("MOVED nonsense"))
        XCTAssertNil(ClusterRedirect("ERR unknown"))
    }
}
