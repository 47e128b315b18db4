import EventLoopSupport
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import RateSync

/// Opens a connection to one target: TCP, then TLS for an https upstream, both within one
/// timeout (`connect_timeout_ms`, or a health check's `timeout_ms`). The connection is handed out only once the handshake (and so the
/// certificate's verification) has succeeded: a bad certificate or a stalled handshake is a
/// failed connect, never a request held on a connection that will not answer.
enum UpstreamConnector {
    /// - Parameter configure: adds the protocol's handlers to the new channel's pipeline (after
    ///   TLS, if any).
    static func connect(
        to target: GatewayConfig.UpstreamTarget,
        tls: NIOSSLContext?,
        timeout: TimeAmount,
        on eventLoop: any EventLoop,
        configure: @escaping @Sendable (any Channel) throws -> Void
    ) -> EventLoopFuture<any Channel> {
        let deadline = NIODeadline.now() + timeout
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.maxMessagesPerRead, value: ReceiveBuffers.readsPerWakeUp)
            .channelOption(.recvAllocator, value: ReceiveBuffers.allocator)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let tls {
                        try pipeline.addHandler(NIOSSLClientHandler(context: tls, serverHostname: TLSServerName.forHost(target.host)))
                        try pipeline.addHandler(TLSHandshakeWatcher(promise: channel.eventLoop.makePromise()))
                    }
                    try configure(channel)
                }
            }
        // An address literal needs no resolver (getaddrinfo and happy eyeballs per connect).
        let connecting: EventLoopFuture<any Channel>
        if let address = try? SocketAddress(ipAddress: target.connectHost, port: target.port) {
            connecting = bootstrap.connect(to: address)
        } else {
            connecting = bootstrap.connect(host: target.connectHost, port: target.port)
        }
        guard tls != nil else { return connecting }
        return connecting.flatMap { channel in
            guard let watcher = try? channel.pipeline.syncOperations.handler(type: TLSHandshakeWatcher.self) else {
                return channel.eventLoop.makeSucceededFuture(channel)
            }
            let stalled = channel.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
                watcher.fail(ChannelError.connectTimeout(timeout))
            }
            let connected = channel.eventLoop.makePromise(of: (any Channel).self)
            watcher.promise.futureResult.assumeIsolated().whenComplete { result in
                stalled.cancel()
                switch result {
                case .success:
                    connected.succeed(channel)
                case .failure(let error):
                    channel.close(promise: nil)
                    connected.fail(error)
                }
            }
            return connected.futureResult
        }
    }
}

/// Completes its promise when the TLS handshake succeeds, or fails it when the connection
/// errs or closes first.
final class TLSHandshakeWatcher: ChannelInboundHandler {
    typealias InboundIn = NIOAny

    let promise: EventLoopPromise<Void>
    private var completed = false

    init(promise: EventLoopPromise<Void>) {
        self.promise = promise
    }

    func fail(_ error: any Error) {
        guard !completed else { return }
        completed = true
        promise.fail(error)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event, !completed {
            completed = true
            promise.succeed(())
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }
}
