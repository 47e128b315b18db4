import Logging
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOSSL

/// A target's HTTP/2 connection on one event loop (`protocol = "h2"`): each request is a stream
/// of it, carried by swift-nio-http2's client side (its flow control, HPACK and stream limits
/// are the peer's business, and the gateway's own framing code only ever serves clients).
/// Requests that come while it connects wait for it; once it is closed or the target said
/// GOAWAY, the next request opens a new one (streams already open finish on the old).
final class UpstreamH2Session {
    private enum State {
        case disconnected
        case connecting([(Result<UpstreamConnection, any Error>) -> Void])
        case ready(any Channel, NIOHTTP2Handler.StreamMultiplexer)
    }

    private var state = State.disconnected
    /// Weak: a connect or a connection may outlive a pool that a reload or a DNS change retired
    /// (the pool owns this session; nothing per request goes through this reference).
    private weak var pool: UpstreamPool?

    init(pool: UpstreamPool) {
        self.pool = pool
    }

    /// A new stream for one request, as a connection leased to it.
    func openStream(_ completion: @escaping (Result<UpstreamConnection, any Error>) -> Void) {
        switch state {
        case .ready(let channel, let multiplexer) where channel.isActive:
            createStream(on: multiplexer, completion)
        case .connecting(var waiting):
            waiting.append(completion)
            state = .connecting(waiting)
        case .ready, .disconnected:
            state = .connecting([completion])
            connect()
        }
    }

    /// Closes the connection (shutdown); streams in flight end with it.
    func close() {
        if case .ready(let channel, _) = state { channel.close(promise: nil) }
        state = .disconnected
    }

    private func connect() {
        guard let pool else {
            fail(ChannelError.ioOnClosedChannel)
            return
        }
        let health = pool.health
        guard health.reserveConnection() else {
            fail(UpstreamBusy())
            return
        }
        let connecting = UpstreamConnector.connect(to: pool.target, tls: pool.tls, timeout: pool.connectTimeout, on: pool.eventLoop) { channel in
            _ = try UpstreamH2Pipeline.configure(channel.pipeline.syncOperations)
            try channel.pipeline.syncOperations.addHandler(UpstreamH2ConnectionWatcher())
        }
        connecting.assumeIsolated().whenComplete { result in
            guard case .connecting(let waiting) = self.state else { return }
            switch result {
            case .failure(let error):
                health.connectionClosed()
                self.pool?.connectFinished(error: error)
                self.fail(error)
            case .success(let channel):
                guard let multiplexer = try? channel.pipeline.syncOperations.handler(type: NIOHTTP2Handler.self).syncMultiplexer(),
                    let watcher = try? channel.pipeline.syncOperations.handler(type: UpstreamH2ConnectionWatcher.self)
                else {
                    channel.close(promise: nil)
                    health.connectionClosed()
                    self.fail(ChannelError.ioOnClosedChannel)
                    return
                }
                channel.closeFuture.whenComplete { _ in health.connectionClosed() }
                watcher.onEnd = { [weak self] in self?.ended(channel) }
                self.pool?.connectFinished(error: nil)
                self.state = .ready(channel, multiplexer)
                for completion in waiting { self.createStream(on: multiplexer, completion) }
            }
        }
    }

    /// The connection closed or was told to go away: new requests get a new one.
    private func ended(_ channel: any Channel) {
        if case .ready(let current, _) = state, current === channel { state = .disconnected }
    }

    private func fail(_ error: any Error) {
        guard case .connecting(let waiting) = state else { return }
        state = .disconnected
        for completion in waiting { completion(.failure(error)) }
    }

    private func createStream(
        on multiplexer: NIOHTTP2Handler.StreamMultiplexer,
        _ completion: @escaping (Result<UpstreamConnection, any Error>) -> Void
    ) {
        UpstreamH2Pipeline.openStream(on: multiplexer, overTLS: pool?.tls != nil) { UpstreamHandler() }
            .assumeIsolated().whenComplete { result in
                switch result {
                case .failure(let error):
                    completion(.failure(error))
                case .success(let stream):
                    guard let handler = try? stream.pipeline.syncOperations.handler(type: UpstreamHandler.self) else {
                        stream.close(promise: nil)
                        completion(.failure(ChannelError.ioOnClosedChannel))
                        return
                    }
                    handler.pool = self.pool
                    completion(.success(UpstreamConnection(channel: stream, handler: handler)))
                }
            }
    }
}

/// Tells its session when the target's connection closes or says GOAWAY (the frames of stream 0
/// come down the connection's own pipeline).
final class UpstreamH2ConnectionWatcher: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame

    var onEnd: (() -> Void)?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .goAway = Self.unwrapInboundIn(data).payload { end() }
    }

    func channelInactive(context: ChannelHandlerContext) {
        end()
        context.fireChannelInactive()
    }

    private func end() {
        let onEnd = self.onEnd
        self.onEnd = nil
        onEnd?()
    }
}
