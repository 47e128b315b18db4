import Foundation
@testable import Gateway
import RateSync
import TestSupport
import XCTest

/// Both config parsers fed mutated files and hostile values for every key (fixed seeds): each
/// input is a clear error or a config that builds a runtime and decides a request in memory;
/// none crashes (a crash ends this test process, which fails the test).
final class ConfigFuzzTests: XCTestCase {
    /// xorshift64*: the same inputs on every run.
    private struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            return state &* 2_685_821_657_736_338_717
        }
        mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
        mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
    }

    private static let hostileValues = [
        "0", "-1", "1", "1e300", "-1e300", "1e19", "9223372036854775807", "-9223372036854775808", "0.0000001",
        "nan", "inf", "-inf", "1.5", "\"\"", "\" \"", "\"1e300\"", "\"${UNSET}\"", "\"${A:-${B}}\"", "[]", "[\"\"]",
        "[\"/8\", \"::/200\", \"999.1.1.1/33\"]", "{}", "true", "\"abc\"", "\"http://\"", "\"https://[::1\"",
        "\"redis://:@:99999/-1\"", "\"rediss://u:p@h:0/999999999999\"", "\"127.0.0.1:0\"", "\"[::1]:70000\"",
        "\"header:\"", "\"global\"", "\"sliding_window\"", "\"token_bucket\"", "\"memory\"", "[1, 2]",
    ]

    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("cfgfuzz-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    /// One mutation: a key's value replaced by a hostile one, a line dropped or doubled, or a few
    /// bytes changed.
    private func mutate(_ text: String, _ random: inout Random) -> String {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        switch random.below(4) {
        case 0, 1:
            let keyed = lines.indices.filter { lines[$0].contains(" = ") }
            guard !keyed.isEmpty else { return text }
            let index = random.pick(keyed)
            let key = lines[index].components(separatedBy: " = ")[0]
            lines[index] = "\(key) = \(random.pick(Self.hostileValues))"
        case 2:
            let index = random.below(lines.count)
            if random.below(2) == 0 { lines.remove(at: index) } else { lines.insert(lines[index], at: index) }
        default:
            var bytes = Array(lines.joined(separator: "\n").utf8)
            for _ in 0..<(1 + random.below(3)) where !bytes.isEmpty {
                let index = random.below(bytes.count)
                let byte = UInt8(truncatingIfNeeded: random.next())
                if random.below(2) == 0 { bytes[index] = byte } else { bytes.insert(byte, at: index) }
            }
            return String(decoding: bytes, as: UTF8.self)
        }
        return lines.joined(separator: "\n")
    }

    /// Loads the pair; when it loads, builds the runtime and decides one request per limiter.
    private func exercise(gateway: String, rateSync: String) throws -> Bool {
        let gatewayPath = directory.appendingPathComponent("gateway.toml")
        try gateway.write(to: gatewayPath, atomically: true, encoding: .utf8)
        try rateSync.write(to: directory.appendingPathComponent("rate-sync.toml"), atomically: true, encoding: .utf8)
        let loaded: LoadedConfig
        do {
            loaded = try LoadedConfig.load(gatewayPath: gatewayPath.path, environment: ["A": "1"])
        } catch {
            XCTAssertFalse(error.problems.isEmpty, "an error names its problems")
            return false
        }
        var stores: [String: any RateLimitStore] = [:]
        for store in loaded.rateSync.stores.values { stores[store.id] = MemoryStore(id: store.id) }
        _ = try? GatewayRuntime(config: loaded, stores: stores)
        for limiter in loaded.rateSync.limiters.values {
            let store = stores[limiter.storeID] as? MemoryStore
            for shadow in [false, true] {
                let check = LimitCheck(limiter: limiter, identifier: "fuzz", cost: loaded.gateway.routes.last?.cost ?? 1, shadow: shadow)
                for _ in 0..<3 { _ = store?.checkImmediately([check]) }
            }
        }
        return true
    }

    func testMutatedFilesAndHostileValuesNeverCrash() throws {
        let gateway = DeploymentFixtures.gatewayToml.replacingOccurrences(
            of: "[server]\n",
            with: "[server]\ntrusted_proxies = [\"127.0.0.1\"]\nidle_timeout_seconds = 5\nsend_timeout_seconds = 5\nmax_header_bytes = 4096\n"
        ) + "\n[circuit_breaker]\nthreshold = 5\ntimeout = 60\n"
            + """
            [jwt]
            algorithms = ["HS256"]
            hs256_secret = "0123456789abcdef0123456789abcdef"
            issuer = "https://auth.example.com"
            [stores.local]
            on_failure = "local"
            local_divisor = 2
            [[routes]]
            name = "tokens"
            path_prefix = "/tokens"
            upstream = "app"
            limiters = ["public"]
            shadow = ["auth"]
            cost = 2
            identifier = ["jwt:sub", "query:tenant", "client_ip"]
            on_missing = "reject"

            """
        let rateSync = DeploymentFixtures.memoryLimiters + "\n[fastapi]\ntrusted_proxy_networks = [\"10.0.0.0/8\"]\n"
        XCTAssertTrue(try exercise(gateway: gateway, rateSync: rateSync), "the starting pair loads")
        var loadedCount = 0
        // 0x5555AAAA12344321 found `[{imiters.public]`, which aborted the process inside the TOML
        // library until TOMLFileLoader refused such headers itself.
        let seeds: [UInt64] = [0x9E37_79B9_7F4A_7C15, 0x5555_AAAA_1234_4321, 0x1234_5678_9ABC_DEF1]
        for seed in seeds {
            var random = Random(state: seed)
            for round in 0..<1500 {
                let mutateGateway = round % 2 == 0
                var g = gateway
                var r = rateSync
                for _ in 0..<(1 + random.below(3)) {
                    if mutateGateway { g = mutate(g, &random) } else { r = mutate(r, &random) }
                }
                if try exercise(gateway: g, rateSync: r) { loadedCount += 1 }
            }
        }
        // Some mutations leave a valid pair (a harmless value, a doubled comment): both outcomes
        // were exercised.
        XCTAssertGreaterThan(loadedCount, 0)
        XCTAssertLessThan(loadedCount, 4500)
    }
}
