import NIOCore
import NIOHTTP1
import NIOPosix

/// A kept-alive connection to an upstream, leased to one exchange at a time.
final class UpstreamConnection {
    let channel: any Channel
    let handler: UpstreamHandler
    /// True once it has carried a request: a reused connection may have been closed by the
    /// upstream while idle, which is worth one retry.
    var hasBeenUsed = false

    init(channel: any Channel, handler: UpstreamHandler) {
        self.channel = channel
        self.handler = handler
    }
}

/// Kept-alive connections to one upstream, owned by one event loop and only touched on it, so it
/// needs no lock: an exchange and its upstream connection always share the client's loop.
final class UpstreamPool {
    let upstream: GatewayConfig.Upstream
    let eventLoop: any EventLoop
    private var idle: [UpstreamConnection] = []

    init(upstream: GatewayConfig.Upstream, eventLoop: any EventLoop) {
        self.upstream = upstream
        self.eventLoop = eventLoop
    }

    var idleCount: Int { idle.count }

    /// Hands out the most recently used idle connection (warmest), or connects a new one.
    func acquire(_ completion: @escaping (Result<UpstreamConnection, any Error>) -> Void) {
        eventLoop.assertInEventLoop()
        while let connection = idle.popLast() {
            if connection.channel.isActive {
                completion(.success(connection))
                return
            }
        }
        connect(completion)
    }

    /// Takes a connection back after a complete exchange, or closes it when it cannot be reused.
    func release(_ connection: UpstreamConnection, reusable: Bool) {
        eventLoop.assertInEventLoop()
        connection.handler.delegate = nil
        connection.handler.resumeReads()
        guard reusable, connection.channel.isActive, idle.count < upstream.maxIdleConnections else {
            connection.handler.close()
            return
        }
        connection.hasBeenUsed = true
        idle.append(connection)
    }

    /// A connection closed; if it was idle here, forget it.
    func connectionClosed(_ handler: UpstreamHandler) {
        idle.removeAll { $0.handler === handler }
    }

    /// Closes every idle connection (shutdown).
    func closeIdle() {
        let connections = idle
        idle.removeAll()
        for connection in connections { connection.handler.close() }
    }

    private func connect(_ completion: @escaping (Result<UpstreamConnection, any Error>) -> Void) {
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.milliseconds(Int64(upstream.connectTimeoutMs)))
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Request headers come from NIO's own parser: no second validation.
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(enableOutboundHeaderValidation: false)
                    try channel.pipeline.syncOperations.addHandler(UpstreamHandler())
                }
            }
        bootstrap.connect(host: upstream.host, port: upstream.port).assumeIsolated().whenComplete { result in
            completion(
                result.flatMap { channel in
                    Result {
                        let handler = try channel.pipeline.syncOperations.handler(type: UpstreamHandler.self)
                        handler.pool = self
                        return UpstreamConnection(channel: channel, handler: handler)
                    }
                }
            )
        }
    }
}
