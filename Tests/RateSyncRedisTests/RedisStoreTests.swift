import Logging
import NIOCore
import NIOPosix
import RateSync
import TestSupport
import XCTest

@testable import RateSyncRedis

/// The Redis store against a real redis-server started for each test.
final class RedisStoreTests: XCTestCase {
    private var redis: RedisServer!
    private var group: MultiThreadedEventLoopGroup!
    private var stores: [RedisStore] = []

    override func setUpWithError() throws {
        redis = try RedisServer()
        group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    }

    override func tearDownWithError() throws {
        stores.forEach { $0.stop() }
        try group.syncShutdownGracefully()
        redis.stop()
    }

    private func makeStore(url: String? = nil, timeoutMs: Int64 = 300, caFile: String? = nil) throws -> RedisStore {
        var settings = RedisStoreSettings(url: try RedisURL.parse(url ?? redis.url))
        settings.caFile = caFile
        settings.socketConnectTimeout = 2
        let store = try RedisStore(
            id: "redis",
            settings: settings,
            commandTimeout: .milliseconds(timeoutMs),
            group: group,
            logger: Logger(label: "test")
        )
        stores.append(store)
        return store
    }

    private func limiter(_ id: String, _ algorithm: LimiterConfig.Algorithm, maxConcurrent: Int? = nil) -> LimiterConfig {
        LimiterConfig(id: id, storeID: "redis", algorithm: algorithm, maxConcurrent: maxConcurrent)
    }

    private func decide(_ store: RedisStore, _ checks: [LimitCheck]) throws -> [Decision] {
        try store.check(checks, on: group.next()).wait()
    }

    /// Each request's checks, all issued in one event-loop tick (so they share a script call).
    private func decideInOneTick(_ store: RedisStore, _ requests: [[LimitCheck]]) throws -> [Result<[Decision], any Error>] {
        let loop = group.next()
        let futures = try loop.submit { requests.map { store.check($0, on: loop) } }.wait()
        return futures.map { future in Result { try future.wait() } }
    }

    func testScriptNamesMatchRedisOwnSHA1() throws {
        XCTAssertEqual(try redis.cli(["SCRIPT", "LOAD", LimitScript.source]), SHA1.hex(LimitScript.source))
        XCTAssertEqual(SHA1.hex(""), "da39a3ee5e6b4b0d3255bfef95601890afd80709")
    }

    func testEveryDecisionMatchesTheMemoryStore() throws {
        let store = try makeStore()
        try store.connect().wait()
        let memory = MemoryStore(id: "memory")
        let scenarios: [(LimiterConfig, Int)] = [
            // Rates slow enough that no token comes back during the test.
            (limiter("bucket", .tokenBucket(TokenBucketRule(ratePerSecond: 0.01, burst: 3))), 5),
            (limiter("spacing", .tokenBucket(TokenBucketRule(ratePerSecond: 0.01, burst: 1))), 3),
            (limiter("window", .slidingWindow(SlidingWindowRule(limit: 4, windowSeconds: 100))), 6),
            (limiter("slots", .tokenBucket(nil), maxConcurrent: 2), 4),
        ]
        for (config, requests) in scenarios {
            for _ in 0..<requests {
                let check = [LimitCheck(limiter: config, identifier: "client")]
                let onRedis = try decide(store, check)[0]
                let inMemory = memory.decide(check)[0]
                XCTAssertEqual(onRedis.allowed, inMemory.allowed, config.id)
                XCTAssertEqual(onRedis.limit, inMemory.limit, config.id)
                XCTAssertEqual(onRedis.remaining, inMemory.remaining, config.id)
                XCTAssertEqual(onRedis.retryAfter, inMemory.retryAfter, accuracy: 0.5, config.id)
                XCTAssertEqual(onRedis.resetAfter, inMemory.resetAfter, accuracy: 0.5, config.id)
            }
        }
        // Concurrency slots come back on release, on both.
        let slots = [LimitCheck(limiter: scenarios[3].0, identifier: "client")]
        store.release(slots)
        memory.release(slots)
        Thread.sleep(forTimeInterval: 0.1)
        XCTAssertEqual(try decide(store, slots)[0].allowed, memory.decide(slots)[0].allowed)
    }

    func testARoutesLimitersAreAllOrNothing() throws {
        let store = try makeStore()
        try store.connect().wait()
        let generous = limiter("generous", .slidingWindow(SlidingWindowRule(limit: 100, windowSeconds: 60)))
        let strict = limiter("strict", .slidingWindow(SlidingWindowRule(limit: 2, windowSeconds: 60)))
        let both = [LimitCheck(limiter: generous, identifier: "c"), LimitCheck(limiter: strict, identifier: "c")]
        let admitted = try (0..<10).filter { _ in try decide(store, both).allSatisfy(\.allowed) }.count
        XCTAssertEqual(admitted, 2)
        XCTAssertEqual(try decide(store, [LimitCheck(limiter: generous, identifier: "c")])[0].remaining, 97)
    }

    func testCostAndShadowDecideAsTheMemoryStoreDoes() throws {
        let store = try makeStore()
        try store.connect().wait()
        let memory = MemoryStore(id: "memory")
        let window = limiter("window", .slidingWindow(SlidingWindowRule(limit: 10, windowSeconds: 100)))
        let bucket = limiter("bucket", .tokenBucket(TokenBucketRule(ratePerSecond: 0.01, burst: 9)))
        let shadow = limiter("shadow", .slidingWindow(SlidingWindowRule(limit: 4, windowSeconds: 100)), maxConcurrent: 100)
        var shadowDenials = 0
        for round in 0..<6 {
            let checks = [
                LimitCheck(limiter: window, identifier: "c", cost: 3),
                LimitCheck(limiter: bucket, identifier: "c", cost: 2),
                LimitCheck(limiter: shadow, identifier: "c", cost: 3, shadow: true),
            ]
            let onRedis = try decide(store, checks)
            let inMemory = memory.decide(checks)
            for (index, (redisDecision, memoryDecision)) in zip(onRedis, inMemory).enumerated() {
                let what = "round \(round), check \(index)"
                XCTAssertEqual(redisDecision.allowed, memoryDecision.allowed, what)
                XCTAssertEqual(redisDecision.remaining, memoryDecision.remaining, what)
                XCTAssertEqual(redisDecision.retryAfter, memoryDecision.retryAfter, accuracy: 0.5, what)
            }
            if !onRedis[2].allowed && onRedis[0].allowed && onRedis[1].allowed { shadowDenials += 1 }
        }
        // Window 10 at cost 3: three admitted (9 units); the shadow (4 at cost 3) admits one.
        XCTAssertEqual(try redis.cli(["ZCARD", "rate_limit:window:c:window"]), "9")
        XCTAssertEqual(try redis.cli(["ZCARD", "rate_limit:shadow:c:window"]), "3", "the shadow spent only what it admitted")
        XCTAssertEqual(try redis.cli(["GET", "rate_limit:shadow:c:concurrent"]), "1", "an admitted shadow holds its slot")
        XCTAssertEqual(shadowDenials, 2, "requests the shadow would have denied while the enforced ones admitted")
    }

    func testWaitingAdmissionsMatchTheMemoryStoreAndAreGivenBack() throws {
        let store = try makeStore()
        try store.connect().wait()
        let memory = MemoryStore(id: "memory")
        let bucket = limiter("bucket", .tokenBucket(TokenBucketRule(ratePerSecond: 10, burst: 1)))
        let window = limiter("window", .slidingWindow(SlidingWindowRule(limit: 2, windowSeconds: 100)))
        for (config, maxWait) in [(bucket, 0.35), (window, 100.0)] {
            var onRedis: [Decision] = []
            for _ in 0..<5 {
                let check = [LimitCheck(limiter: config, identifier: "c", maxWait: maxWait)]
                let (redisDecision, memoryDecision) = (try decide(store, check)[0], memory.decide(check)[0])
                XCTAssertEqual(redisDecision.allowed, memoryDecision.allowed, config.id)
                // The two stores' clocks differ by the time between the calls, a few ms.
                XCTAssertEqual(redisDecision.delay, memoryDecision.delay, accuracy: 0.05, config.id)
                XCTAssertEqual(redisDecision.reservation != nil, memoryDecision.reservation != nil, config.id)
                onRedis.append(redisDecision)
            }
            XCTAssertEqual(onRedis.map(\.allowed), [true, true, true, true, false], config.id)
        }
        // The window's waiting admissions are logged ahead (scores past now), named by their reservation.
        let windowKey = "rate_limit:window:c:window"
        XCTAssertEqual(try redis.cli(["ZCARD", windowKey]), "4")
        let waiting = try decide(store, [LimitCheck(limiter: window, identifier: "d", maxWait: 100)])
        XCTAssertEqual(waiting[0].delay, 0)
        _ = try decide(store, [LimitCheck(limiter: window, identifier: "d", maxWait: 100)])
        var third = LimitCheck(limiter: window, identifier: "d", maxWait: 100)
        let thirdDecision = try decide(store, [third])[0]
        XCTAssertEqual(thirdDecision.delay, 100, accuracy: 1)
        third.reservation = try XCTUnwrap(thirdDecision.reservation)
        try group.next().submit { store.giveBack([third]) }.wait()
        _ = try waitUntil("the waiting admission's entry leaves the window", timeout: 3) {
            try redis.cli(["ZCARD", "rate_limit:window:d:window"]) == "2"
        }
        // The bucket's arrival time moves back one interval per reservation given back.
        var reserved = LimitCheck(limiter: bucket, identifier: "e", maxWait: 1)
        _ = try decide(store, [reserved])
        let before = try XCTUnwrap(Double(try redis.cli(["GET", "rate_limit:bucket:e:rate"])))
        let decision = try decide(store, [reserved])[0]
        XCTAssertGreaterThan(decision.delay, 0)
        reserved.reservation = decision.reservation
        try group.next().submit { store.giveBack([reserved]) }.wait()
        _ = try waitUntil("the bucket's arrival time is back", timeout: 3) {
            try abs(XCTUnwrap(Double(redis.cli(["GET", "rate_limit:bucket:e:rate"]))) - before) < 1e-6
        }
    }

    func testAReleaseThatFailsIsTriedAgainUntilItLands() throws {
        let store = try makeStore(timeoutMs: 200)
        try store.connect().wait()
        let slots = limiter("slots", .tokenBucket(nil), maxConcurrent: 1)
        var check = LimitCheck(limiter: slots, identifier: "c")
        let loop = group.next()
        let taken = try store.check([check], on: loop).wait()[0]
        XCTAssertTrue(taken.allowed)
        check.lease = taken.lease
        // The counter made unreadable: every try fails, and changes nothing.
        let counter = "rate_limit:slots:c:concurrent"
        try redis.cli(["DEL", counter])
        try redis.cli(["RPUSH", counter, "not a count"])
        let callsBefore = try redis.calls(of: "evalsha")
        try loop.submit { store.release([check]) }.wait()
        _ = try waitUntil("the failed release is tried again", timeout: 3) { try redis.calls(of: "evalsha") >= callsBefore + 3 }
        XCTAssertEqual(try redis.cli(["ZCARD", "rate_limit:slots:c:leases"]), "1", "the lease stays until the release lands")
        // One command (SET replaces a key of any type): a retry between two would find no counter.
        try redis.cli(["SET", counter, "1"])
        _ = try waitUntil("the release lands once Redis can take it", timeout: 5) { try redis.cli(["GET", counter]) == "0" }
        XCTAssertEqual(try redis.cli(["ZCARD", "rate_limit:slots:c:leases"]), "0")
    }

    func testSlotsOfAStoreThatStopsRenewingComeBackWhenTheirLeasesRunOut() throws {
        var limiter = limiter("slots", .tokenBucket(nil), maxConcurrent: 1)
        limiter.leaseSeconds = 1
        let check = [LimitCheck(limiter: limiter, identifier: "c")]
        // A gateway that takes the slot and then dies: its store stops without giving it back.
        let dying = try makeStore()
        try dying.connect().wait()
        let taken = try decide(dying, check)[0]
        XCTAssertTrue(taken.allowed)
        XCTAssertNotNil(taken.lease)
        dying.stop()
        let survivor = try makeStore()
        try survivor.connect().wait()
        XCTAssertFalse(try decide(survivor, check)[0].allowed, "held until its lease runs out")
        Thread.sleep(forTimeInterval: 1.2)
        let reclaimed = try decide(survivor, check)[0]
        XCTAssertTrue(reclaimed.allowed, "the dead holder's slot came back")
        XCTAssertEqual(try redis.cli(["GET", "rate_limit:slots:c:concurrent"]), "1", "and was taken again: one in flight")

        // A live holder renews its lease: the slot stays held well past one lease.
        Thread.sleep(forTimeInterval: 2.5)
        XCTAssertFalse(try decide(survivor, check)[0].allowed, "renewed while the request lasts")
        var held = check[0]
        held.lease = reclaimed.lease
        survivor.release([held])
        let deadline = Date().addingTimeInterval(2)
        var again = false
        while !again && Date() < deadline {
            again = try decide(survivor, check)[0].allowed
            if !again { usleep(20_000) }
        }
        XCTAssertTrue(again, "given back on release")
        // A release of a lease that already ran out gives nothing back twice.
        var stale = check[0]
        stale.lease = taken.lease
        survivor.release([stale])
        Thread.sleep(forTimeInterval: 0.2)
        XCTAssertEqual(try redis.cli(["GET", "rate_limit:slots:c:concurrent"]), "1")
    }

    func testSlidingWindowIsExactUnderConcurrencyEvenWhileScriptsAreFlushed() throws {
        let store = try makeStore(timeoutMs: 2000)
        try store.connect().wait()
        let window = limiter("exact", .slidingWindow(SlidingWindowRule(limit: 100, windowSeconds: 300)))
        var futures: [EventLoopFuture<[Decision]>] = []
        for round in 0..<8 {
            for _ in 0..<50 {
                futures.append(store.check([LimitCheck(limiter: window, identifier: "shared")], on: group.next()))
            }
            if round % 2 == 0 { try redis.cli(["SCRIPT", "FLUSH"]) }
            Thread.sleep(forTimeInterval: 0.01)
        }
        let decisions = try futures.map { try $0.wait()[0] }
        XCTAssertEqual(decisions.filter(\.allowed).count, 100, "exactly the limit, never one more")
        XCTAssertEqual(try redis.cli(["ZCARD", "rate_limit:exact:shared:window"]), "100")
        XCTAssertGreaterThan(try redis.calls(of: "eval"), 0, "NOSCRIPT was answered by EVAL")
    }

    func testKeysFollowRateSyncsLayoutAndExpire() throws {
        let store = try makeStore()
        try store.connect().wait()
        _ = try decide(store, [LimitCheck(limiter: limiter("auth", .slidingWindow(SlidingWindowRule(limit: 10, windowSeconds: 300))), identifier: "10.0.0.1")])
        _ = try decide(store, [LimitCheck(limiter: limiter("public", .tokenBucket(TokenBucketRule(ratePerSecond: 1, burst: 1))), identifier: "10.0.0.1")])
        XCTAssertEqual(try redis.cli(["TYPE", "rate_limit:auth:10.0.0.1:window"]), "zset")
        let ttl = Int(try redis.cli(["TTL", "rate_limit:auth:10.0.0.1:window"])) ?? -1
        XCTAssertTrue((300...360).contains(ttl), "TTL window + 60, got \(ttl)")
        let stored = Double(try redis.cli(["GET", "rate_limit:public:10.0.0.1:rate"])) ?? 0
        XCTAssertEqual(stored, Date().timeIntervalSince1970, accuracy: 5, "burst 1 stores the admission time, as rate-sync does")
        XCTAssertGreaterThan(Int(try redis.cli(["PTTL", "rate_limit:public:10.0.0.1:rate"])) ?? -1, 0)
    }

    func testWrongPasswordAndDatabaseAreClearErrorsThatNeverShowThePassword() throws {
        let guarded = try RedisServer(extraArguments: ["--requirepass", "right-secret"])
        defer { guarded.stop() }
        let wrong = try makeStore(url: "redis://:wrong-secret@127.0.0.1:\(guarded.port)/0")
        XCTAssertThrowsError(try wrong.connect().wait()) { error in
            XCTAssertTrue("\(error)".contains("authentication failed"), "\(error)")
            XCTAssertFalse("\(error)".contains("wrong-secret"))
        }
        let badDatabase = try makeStore(url: "redis://:right-secret@127.0.0.1:\(guarded.port)/99")
        XCTAssertThrowsError(try badDatabase.connect().wait()) { error in
            XCTAssertTrue("\(error)".contains("cannot select the database"), "\(error)")
        }
        let good = try makeStore(url: "redis://:right-secret@127.0.0.1:\(guarded.port)/3")
        XCTAssertNoThrow(try good.connect().wait())
    }

    func testMalformedRepliesFailTheCommandWithoutCrashing() throws {
        let liar = try GarbageServer(reply: "?this is not RESP\r\n")
        defer { liar.stop() }
        let store = try makeStore(url: "redis://127.0.0.1:\(liar.port)")
        XCTAssertThrowsError(try store.connect().wait()) { error in
            XCTAssertTrue("\(error)".contains("malformed reply") || "\(error)".contains("closed"), "\(error)")
        }
    }

    func testAHungRedisFailsEachRequestWithinTheDeadlineAndRecovers() throws {
        let store = try makeStore(timeoutMs: 150)
        try store.connect().wait()
        let bucket = [LimitCheck(limiter: limiter("p", .tokenBucket(TokenBucketRule(ratePerSecond: 1000))), identifier: "x")]
        XCTAssertTrue(try decide(store, bucket)[0].allowed)
        redis.pause()
        let started = Date()
        XCTAssertThrowsError(try decide(store, bucket))
        XCTAssertLessThan(Date().timeIntervalSince(started), 1.5, "bounded by the 150 ms deadline, not by socket_timeout")
        redis.resume()
        let recovered = (0..<100).contains { _ in
            Thread.sleep(forTimeInterval: 0.05)
            return (try? decide(store, bucket)[0].allowed) == true
        }
        XCTAssertTrue(recovered, "reconnected after Redis came back")
    }

    func testReconnectsAfterARestart() throws {
        let store = try makeStore()
        try store.connect().wait()
        let bucket = [LimitCheck(limiter: limiter("p", .tokenBucket(TokenBucketRule(ratePerSecond: 1000))), identifier: "x")]
        XCTAssertTrue(try decide(store, bucket)[0].allowed)
        let port = redis.port
        redis.stop()
        XCTAssertThrowsError(try decide(store, bucket))
        redis = try RedisServer(port: port)
        let recovered = (0..<100).contains { _ in
            Thread.sleep(forTimeInterval: 0.05)
            return (try? decide(store, bucket)[0].allowed) == true
        }
        XCTAssertTrue(recovered)
    }

    func testTLSWithAConfiguredCA() throws {
        let certificates = try TestCertificates(commonName: "localhost")
        defer { certificates.remove() }
        let tlsRedis = try RedisServer(tls: (certificates.serverCert, certificates.serverKey, certificates.caCert))
        defer { tlsRedis.stop() }
        let trusted = try makeStore(url: "rediss://localhost:\(tlsRedis.port)/0", caFile: certificates.caCert)
        try trusted.connect().wait()
        let bucket = [LimitCheck(limiter: limiter("tls", .tokenBucket(TokenBucketRule(ratePerSecond: 10))), identifier: "x")]
        XCTAssertTrue(try decide(trusted, bucket)[0].allowed)
        let untrusted = try makeStore(url: "rediss://localhost:\(tlsRedis.port)/0")
        XCTAssertThrowsError(try untrusted.connect().wait(), "a self-signed CA is not in the system trust store")
    }

    func testRequestsOfOneTickShareOneScriptCallAndStayExactAndAtomic() throws {
        let store = try makeStore(timeoutMs: 2000)
        try store.connect().wait()
        let window = limiter("batched", .slidingWindow(SlidingWindowRule(limit: 20, windowSeconds: 300)))
        let strict = limiter("strict", .slidingWindow(SlidingWindowRule(limit: 5, windowSeconds: 300)))
        let before = try redis.calls(of: "evalsha") + redis.calls(of: "eval")
        // Fifty requests issued in one event-loop tick; every second one also has the strict limiter.
        let requests = (0..<50).map { index in
            [LimitCheck(limiter: window, identifier: "shared")] + (index % 2 == 1 ? [LimitCheck(limiter: strict, identifier: "shared")] : [])
        }
        let decisions = try decideInOneTick(store, requests).map { try $0.get() }
        XCTAssertEqual(try redis.calls(of: "evalsha") + redis.calls(of: "eval") - before, 1, "one call for the tick")
        let admitted = decisions.filter { $0.allSatisfy(\.allowed) }.count
        XCTAssertEqual(admitted, 20, "exactly the window's limit")
        // The strict limiter admitted 5 of its requests; denied requests consumed nothing.
        XCTAssertEqual(try redis.cli(["ZCARD", "rate_limit:strict:shared:window"]), "5")
        XCTAssertEqual(try redis.cli(["ZCARD", "rate_limit:batched:shared:window"]), "20")
    }

    /// Requests of one tick that check the same token bucket share its key within the call: the
    /// bucket is read once and written once, and each request is still decided after the ones
    /// before it. A key holding no number fails only the requests that check it.
    func testATokenBucketCheckedByManyRequestsOfOneTickIsReadAndWrittenOnce() throws {
        let store = try makeStore(timeoutMs: 2000)
        try store.connect().wait()
        // A token every 100 s: none comes back during the test.
        let bucket = limiter("hot", .tokenBucket(TokenBucketRule(ratePerSecond: 0.01, burst: 4)))
        XCTAssertEqual(try redis.cli(["SET", "rate_limit:hot:corrupt:rate", "not a number"]), "OK")
        let (calls, gets, sets) = (try redis.calls(of: "evalsha") + redis.calls(of: "eval"), try redis.calls(of: "get"), try redis.calls(of: "set"))
        let identities = Array(repeating: "shared", count: 10) + ["other", "corrupt", "corrupt"]
        let results = try decideInOneTick(store, identities.map { [LimitCheck(limiter: bucket, identifier: $0)] })
        XCTAssertEqual(try redis.calls(of: "evalsha") + redis.calls(of: "eval") - calls, 1, "one call for the tick")
        let shared: [Decision] = try results[0..<10].map { try $0.get()[0] }
        XCTAssertEqual(shared.map(\.allowed), Array(repeating: true, count: 4) + Array(repeating: false, count: 6))
        XCTAssertEqual(shared[0..<4].map(\.remaining), [3, 2, 1, 0], "each request sees the ones before it")
        XCTAssertEqual(try results[10].get()[0].remaining, 3, "another identity has its own bucket")
        for corrupt in results[11...] {
            XCTAssertThrowsError(try corrupt.get(), "a key holding no number fails its own requests")
        }
        // The shared bucket, the other and the corrupt key (once per request that checks it, as
        // a failed read is not kept) are read; only the two admitted buckets are written.
        XCTAssertEqual(try redis.calls(of: "get") - gets, 4)
        XCTAssertEqual(try redis.calls(of: "set") - sets, 2)
        // What four calls one after another would have left: rate-sync's last admission time
        // (the TAT minus one interval), three intervals ahead, kept until the bucket is full.
        let stored = Double(try redis.cli(["GET", "rate_limit:hot:shared:rate"])) ?? 0
        XCTAssertEqual(stored, Date().timeIntervalSince1970 + 300, accuracy: 5)
        let ttl = Int(try redis.cli(["PTTL", "rate_limit:hot:shared:rate"])) ?? -1
        XCTAssertEqual(Double(ttl), 401_000, accuracy: 5_000)
        XCTAssertEqual(try redis.cli(["GET", "rate_limit:hot:corrupt:rate"]), "not a number")
    }

    /// The same for a sliding window: pruned and counted once per call, its lifetime set once,
    /// one member added per admission, each request decided after the ones before it.
    func testASlidingWindowCheckedByManyRequestsOfOneTickIsPrunedAndCountedOnce() throws {
        let store = try makeStore(timeoutMs: 2000)
        try store.connect().wait()
        let window = limiter("busy", .slidingWindow(SlidingWindowRule(limit: 5, windowSeconds: 100)))
        XCTAssertEqual(try redis.cli(["SET", "rate_limit:busy:foreign:window", "not a sorted set"]), "OK")
        let commands = ["zremrangebyscore", "zcard", "zadd", "expire"]
        let before = try commands.map { try redis.calls(of: $0) }
        let identities = Array(repeating: "shared", count: 8) + ["other", "foreign", "foreign"]
        let results = try decideInOneTick(store, identities.map { [LimitCheck(limiter: window, identifier: $0)] })
        let shared: [Decision] = try results[0..<8].map { try $0.get()[0] }
        XCTAssertEqual(shared.map(\.allowed), Array(repeating: true, count: 5) + Array(repeating: false, count: 3))
        XCTAssertEqual(shared[0..<5].map(\.remaining), [4, 3, 2, 1, 0], "each request sees the ones before it")
        XCTAssertEqual(try results[8].get()[0].remaining, 4, "another identity has its own window")
        for foreign in results[9...] {
            XCTAssertThrowsError(try foreign.get(), "a key of another type fails its own requests")
        }
        let counts = try zip(commands, before).map { try redis.calls(of: $0) - $1 }
        // Pruned and counted: the shared window, the other, and the foreign key once per
        // request (its prune fails); a member per admission; a lifetime per window added to.
        XCTAssertEqual(counts, [4, 2, 6, 2], "calls of \(commands)")
        XCTAssertEqual(try redis.cli(["ZCARD", "rate_limit:busy:shared:window"]), "5")
        let ttl = Int(try redis.cli(["TTL", "rate_limit:busy:shared:window"])) ?? -1
        XCTAssertTrue((155...160).contains(ttl), "the window and 60 s, got \(ttl)")
    }

    /// The same for concurrency slots: the counter is reclaimed and read once per call (here two
    /// slots of a gateway that died are reclaimed first), each slot taken raises it and adds its
    /// lease, and both lifetimes are set once. A counter INCR refuses fails only its own requests.
    func testConcurrencySlotsCheckedByManyRequestsOfOneTickAreReadOnce() throws {
        let store = try makeStore(timeoutMs: 2000)
        try store.connect().wait()
        let slots = limiter("pool", .tokenBucket(nil), maxConcurrent: 3)
        let past = String(Date().timeIntervalSince1970 - 10)
        try redis.cli(["SET", "rate_limit:pool:shared:concurrent", "2"])
        try redis.cli(["ZADD", "rate_limit:pool:shared:leases", past, "dead:1", past, "dead:2"])
        try redis.cli(["SET", "rate_limit:pool:odd:concurrent", "1.5"])
        let commands = ["zcount", "get", "incr", "zadd", "expire"]
        let before = try commands.map { try redis.calls(of: $0) }
        let identities = Array(repeating: "shared", count: 5) + ["other", "odd", "odd"]
        let results = try decideInOneTick(store, identities.map { [LimitCheck(limiter: slots, identifier: $0)] })
        let shared: [Decision] = try results[0..<5].map { try $0.get()[0] }
        XCTAssertEqual(shared.map(\.allowed), [true, true, true, false, false], "the dead gateway's slots reclaimed")
        XCTAssertEqual(shared[0..<3].map(\.remaining), [2, 1, 0], "each request sees the ones before it")
        XCTAssertEqual(try results[5].get()[0].remaining, 2, "another identity has its own slots")
        for odd in results[6...] {
            XCTAssertThrowsError(try odd.get(), "a counter that is no integer fails its own requests")
        }
        let counts = try zip(commands, before).map { try redis.calls(of: $0) - $1 }
        // Read: the shared counter twice (to reclaim, then to count), the other and the odd one
        // once each; raised and leased per slot taken (the odd one's raises refused, so its
        // requests fail and take no lease); two lifetimes per counter raised.
        XCTAssertEqual(counts, [3, 4, 6, 4, 4], "calls of \(commands)")
        XCTAssertEqual(try redis.cli(["GET", "rate_limit:pool:shared:concurrent"]), "3")
        XCTAssertEqual(try redis.cli(["ZCARD", "rate_limit:pool:shared:leases"]), "3")
        XCTAssertEqual(try redis.cli(["GET", "rate_limit:pool:odd:concurrent"]), "1.5")
        let ttl = Int(try redis.cli(["TTL", "rate_limit:pool:shared:concurrent"])) ?? -1
        XCTAssertTrue((3590...3600).contains(ttl), "an hour, got \(ttl)")
    }
}
