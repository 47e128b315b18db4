import EventLoopSupport
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Prometheus
import RateSync

/// The running gateway: the proxy listener, the admin listener, and their event loops.
public final class GatewayServer: Sendable {
    public let proxyAddress: SocketAddress
    public let adminAddress: SocketAddress

    private let proxyChannel: any Channel
    private let adminChannel: any Channel
    private let resources: LoopResourcesRegistry
    private let tls: NIOLockedValueBox<NIOSSLContext>?
    /// Where upstreams' active health checks run.
    private let checksLoop: any EventLoop

    /// Binds both listeners. Throws if either address cannot be bound.
    /// - Parameters:
    ///   - metricsRegistry: what `/metrics` renders; nil answers 404 there.
    ///   - accessLog: where each request's line goes; nil for none.
    public static func start(
        runtime: GatewayRuntime,
        adminAddress: ListenAddress,
        group: any EventLoopGroup,
        logger: Logger,
        metricsRegistry: PrometheusCollectorRegistry? = nil,
        accessLog: AccessLog? = nil
    ) throws -> GatewayServer {
        let resources = LoopResourcesRegistry(group: group, runtime: runtime, logger: logger)
        let server = runtime.server
        let initialTLS = try server.tls.map(TLSContexts.server)
        // Read per new connection, replaced by a reload: renewed certificates apply to new
        // connections, and connections already open keep theirs.
        let tls = initialTLS.map { NIOLockedValueBox($0) }
        let pipelines = ConnectionPipelines(
            maxHeaderBytes: server.maxHeaderBytes,
            maxConcurrentStreams: server.maxConcurrentStreams,
            idleTimeout: TimeAmount(seconds: server.idleTimeoutSeconds),
            graceTime: TimeAmount(seconds: server.drainTimeoutSeconds),
            sendTimeout: TimeAmount(seconds: server.sendTimeoutSeconds),
            scheme: tls == nil ? "http" : "https",
            resources: resources,
            accessLog: accessLog
        )
        let h2c = server.h2c
        let proxyChannel = try ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: ReceiveBuffers.readsPerWakeUp)
            .childChannelOption(.recvAllocator, value: ReceiveBuffers.allocator)
            .childChannelInitializer { channel in
                if let tls {
                    return pipelines.configureTLS(channel, context: tls.withLockedValue { $0 })
                }
                return channel.eventLoop.makeCompletedFuture {
                    if h2c {
                        try pipelines.addPrefaceSniffer(channel)
                    } else {
                        try pipelines.configureHTTP1(channel)
                    }
                }
            }
            .bind(host: server.listen.host, port: server.listen.port)
            .wait()

        let admin = AdminContext(resources: resources, metricsRegistry: metricsRegistry)
        let adminChannel: any Channel
        do {
            adminChannel = try ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { [idleTimeout = pipelines.idleTimeout, maxHeaderBytes = pipelines.maxHeaderBytes] channel in
                    channel.eventLoop.makeCompletedFuture {
                        let pipeline = channel.pipeline.syncOperations
                        // An admin connection silent for the idle timeout is closed, as a proxy
                        // connection is: a client that connects and sends nothing holds nothing.
                        try pipeline.addHandler(IdleStateHandler(readTimeout: idleTimeout))
                        // Requests read by the proxy's parser, within its bounds, one at a
                        // time: the next once the last is answered and the socket takes more.
                        try pipeline.addHandler(HTTPResponseEncoder())
                        try pipeline.addHandler(AdminRequestDecoder(maxHeadBytes: maxHeaderBytes))
                        try pipeline.addHandler(AdminHandler(admin: admin))
                    }
                }
                .bind(host: adminAddress.host, port: adminAddress.port)
                .wait()
        } catch {
            try? proxyChannel.close().wait()
            throw error
        }
        let checksLoop = group.next()
        runtime.startUpkeep(on: checksLoop)
        return GatewayServer(proxyChannel: proxyChannel, adminChannel: adminChannel, resources: resources, tls: tls, checksLoop: checksLoop)
    }

    private init(
        proxyChannel: any Channel,
        adminChannel: any Channel,
        resources: LoopResourcesRegistry,
        tls: NIOLockedValueBox<NIOSSLContext>?,
        checksLoop: any EventLoop
    ) {
        self.tls = tls
        self.checksLoop = checksLoop
        self.proxyChannel = proxyChannel
        self.adminChannel = adminChannel
        self.resources = resources
        self.proxyAddress = proxyChannel.localAddress!
        self.adminAddress = adminChannel.localAddress!
    }

    /// Loads the certificate and key again (renewed files) for the connections accepted from now
    /// on. Throws, changing nothing, if they do not load; does nothing on a plain listener.
    public func reloadTLS(_ settings: GatewayConfig.TLSSettings?) throws {
        guard let tls, let settings else { return }
        let context = try TLSContexts.server(settings)
        tls.withLockedValue { $0 = context }
    }

    /// The configuration new requests use from now on; requests in flight finish on the old one.
    public func replaceRuntime(_ runtime: GatewayRuntime) {
        let old = resources.runtime
        _ = resources.replaceRuntime(runtime)
        old.stopUpkeep()
        runtime.startUpkeep(on: checksLoop)
    }

    public var runtime: GatewayRuntime { resources.runtime }

    /// Graceful drain: stops accepting, lets every request in flight finish (each connection
    /// closes once its exchange is over), and completes when none is left or `timeout` passes.
    /// Returns how many connections were still open at the end.
    public func drain(timeout: TimeAmount) -> EventLoopFuture<Int> {
        let loop = proxyChannel.eventLoop
        let deadline = NIODeadline.now() + timeout
        let resources = self.resources
        return proxyChannel.close().flatMapError { _ in loop.makeSucceededVoidFuture() }.flatMap {
            (resources.forEachLoop { $0.drain() } ?? loop.makeSucceededVoidFuture())
        }.flatMap {
            Self.waitForConnections(resources, until: deadline, on: loop)
        }
    }

    private static func waitForConnections(
        _ resources: LoopResourcesRegistry,
        until deadline: NIODeadline,
        on loop: any EventLoop
    ) -> EventLoopFuture<Int> {
        resources.connectionCount(on: loop).flatMap { open in
            if open == 0 || NIODeadline.now() >= deadline { return loop.makeSucceededFuture(open) }
            return loop.scheduleTask(in: .milliseconds(20)) {}.futureResult.flatMap {
                waitForConnections(resources, until: deadline, on: loop)
            }
        }
    }

    /// Stops accepting, closes both listeners and every idle upstream connection, and hands the
    /// access-log lines still waiting in the loops' batches to the log (before it closes).
    public func stop() -> EventLoopFuture<Void> {
        let loop = proxyChannel.eventLoop
        let closes = [proxyChannel.close(), adminChannel.close()]
        return EventLoopFuture.whenAllComplete(closes, on: loop).flatMap { _ in
            self.resources.forEachLoop { resources in
                resources.closeIdleConnections()
                resources.flushAccessLog()
            } ?? loop.makeSucceededVoidFuture()
        }
    }
}
