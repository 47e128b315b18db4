// swift-tools-version:6.0
import PackageDescription

// The hot path's classes are only ever touched from their own event loop, so the runtime
// exclusivity checks (about 2% of a proxied request's CPU time in the profile) buy nothing there.
let releaseOptimizations: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))
]

let package = Package(
    name: "ratesync-gateway",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "ratesync-gateway", targets: ["ratesync-gateway"]),
        .executable(name: "ratesync-demo-upstream", targets: ["ratesync-demo-upstream"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", exact: "0.6.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // Event-loop helpers the other modules share: gathered writes, a connection's one timer.
        .target(
            name: "EventLoopSupport",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: releaseOptimizations
        ),
        // The limiter model: config, algorithms, stores, decisions. Pure: no sockets, no HTTP.
        .target(
            name: "RateSync",
            dependencies: [
                "EventLoopSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ],
            swiftSettings: releaseOptimizations
        ),
        // libhiredis (Debian libhiredis-dev): its RESP reader and command formatter only.
        .systemLibrary(name: "CHiredis", path: "Sources/CHiredis"),
        // The Redis store: RESP over hiredis inside NIO channel handlers, a pipelined client per
        // event loop, the limiter scripts. Only this module touches C.
        .target(
            name: "RateSyncRedis",
            dependencies: [
                "CHiredis",
                "EventLoopSupport",
                "RateSync",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: releaseOptimizations,
            // Link hiredis statically: the binary then needs no hiredis at run time.
            linkerSettings: [.unsafeFlags(["-Xlinker", "-l:libhiredis.a"])]
        ),
        // The Postgres store: rate-sync's tables, one statement per decision (a function in each
        // connection's temporary schema), PostgresNIO's connections on the event loops.
        .target(
            name: "RateSyncPostgres",
            dependencies: [
                "RateSync",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: releaseOptimizations
        ),
        // HTTP/2's server side, below any gateway concern: frames read and written, flow-control
        // windows, request fields checked, frame budgets, the cleartext preface sniffer.
        .target(
            name: "HTTPFieldText",
            swiftSettings: releaseOptimizations
        ),
        .target(
            name: "HTTP2Server",
            dependencies: [
                "EventLoopSupport",
                "HTTPFieldText",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ],
            swiftSettings: releaseOptimizations
        ),
        // The proxy: gateway.toml, routing, identity, listeners, upstream pools, admin.
        .target(
            name: "Gateway",
            dependencies: [
                "EventLoopSupport",
                "HTTPFieldText",
                "RateSync",
                "HTTP2Server",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Atomics", package: "swift-atomics"),
            ],
            swiftSettings: releaseOptimizations
        ),
        .executableTarget(
            name: "ratesync-gateway",
            dependencies: [
                "EventLoopSupport",
                "Gateway",
                "RateSync",
                "RateSyncRedis",
                "RateSyncPostgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // A small, fast HTTP/1.1 server used as the demo upstream, by the benchmarks and by the
        // end-to-end tests (echo, sized downloads, slow answers, dropped connections).
        .executableTarget(
            name: "ratesync-demo-upstream",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        // A TCP relay that parses nothing: the benchmarks' measure of what SwiftNIO's channels
        // cost a proxy per request (scripts/bench.sh's relay scenario).
        .executableTarget(
            name: "ratesync-bench-relay",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        // libFuzzer entry points (scripts/fuzz.sh builds them with `--sanitize=fuzzer`); built
        // without it, each replays the inputs named on its command line.
        .target(name: "FuzzSupport", path: "Fuzz/FuzzSupport"),
        .executableTarget(
            name: "http2-frame-fuzzer",
            dependencies: [
                "FuzzSupport",
                "HTTP2Server",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ],
            path: "Fuzz/HTTP2FrameFuzzer"
        ),
        .executableTarget(
            name: "http2-connection-fuzzer",
            dependencies: [
                "FuzzSupport",
                "HTTP2Server",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Fuzz/HTTP2ConnectionFuzzer"
        ),
        .executableTarget(
            name: "http1-parser-fuzzer",
            dependencies: [
                "FuzzSupport",
                "Gateway",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Fuzz/HTTP1ParserFuzzer"
        ),
        // Helpers the test targets share: child processes, curl, raw sockets, redis-server.
        .target(
            name: "TestSupport",
            dependencies: [
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "CryptoExtras", package: "swift-crypto"),
            ],
            path: "Tests/Support"
        ),
        .testTarget(
            name: "RateSyncTests",
            dependencies: ["RateSync", "TestSupport", .product(name: "NIOEmbedded", package: "swift-nio")]
        ),
        .testTarget(
            name: "GatewayTests",
            dependencies: [
                "Gateway", "EventLoopSupport", "HTTP2Server", "HTTPFieldText", "RateSync", "TestSupport",
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .testTarget(
            name: "HTTP2ServerTests",
            dependencies: [
                "HTTP2Server",
                "HTTPFieldText",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "RateSyncRedisTests",
            dependencies: [
                "RateSyncRedis",
                // hiredis's own command formatter: the reference the gateway's encoder is held to.
                "CHiredis",
                "RateSync",
                "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "RateSyncPostgresTests",
            dependencies: [
                "RateSyncPostgres",
                "RateSync",
                "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "TestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
    ]
)
