@testable import Gateway
import NIOCore
import NIOEmbedded
import XCTest

/// An upstream connection holds its pool strongly while it is open (a weak reference would put
/// the pool's every retain on the runtime's slow path), so the two must part when it closes.
final class UpstreamConnectionLifetimeTests: XCTestCase {
    private let upstream = GatewayConfig.Upstream(
        name: "app", host: "127.0.0.1", port: 8080, basePath: "", connectTimeoutMs: 100, responseTimeoutMs: 100, maxIdleConnections: 4
    )

    /// Sees whether the pool is still alive without keeping it so.
    private final class Observed {
        weak var pool: UpstreamPool?
    }

    /// An open connection idle in a pool that nothing else holds: the pool holds the
    /// connection, the connection the pool.
    private func connectionIdleInItsPool() throws -> (EmbeddedChannel, UpstreamHandler, Observed) {
        let channel = EmbeddedChannel()
        let handler = UpstreamHandler()
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        let targets = UpstreamTargets(upstream: upstream, metrics: GatewayMetrics(), logger: .init(label: "test"))
        let pool = UpstreamPool(upstream: upstream, health: targets.health[0], tls: nil, eventLoop: channel.eventLoop, logger: .init(label: "test"))
        handler.pool = pool
        pool.release(UpstreamConnection(channel: channel, handler: handler), reusable: true)
        let observed = Observed()
        observed.pool = pool
        return (channel, handler, observed)
    }

    func testAnIdleConnectionAndItsPoolPartWhenTheConnectionCloses() throws {
        let (channel, handler, observed) = try connectionIdleInItsPool()
        XCTAssertTrue(observed.pool?.leaseIdle()?.handler === handler, "the connection was kept idle")
        observed.pool?.release(UpstreamConnection(channel: channel, handler: handler), reusable: true)
        XCTAssertNotNil(observed.pool, "an open connection keeps its pool")

        try channel.close().wait()
        XCTAssertNil(handler.pool, "a closed connection lets go of its pool")
        XCTAssertNil(observed.pool, "and the pool, which forgot the connection, is freed")
    }

    func testARetiredPoolClosesItsIdleConnectionsAndIsFreed() throws {
        let (channel, _, observed) = try connectionIdleInItsPool()
        observed.pool?.retire()
        channel.embeddedEventLoop.run()
        XCTAssertFalse(channel.isActive, "a reload's retired pool closes what is idle in it")
        XCTAssertNil(observed.pool)
    }
}
