// A TCP relay on SwiftNIO that parses nothing: each client connection gets its own upstream
// connection, and bytes are passed on as they are read, either way. scripts/bench.sh measures it
// beside nginx and the gateway (the relay scenario): the cost any proxy built on SwiftNIO's
// channels pays per request before it reads a byte of HTTP.
//
// Usage: ratesync-bench-relay LISTEN-PORT UPSTREAM-PORT (both on 127.0.0.1)

import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// One side of a relayed pair: what it reads goes to its peer. It stops reading while the peer
/// cannot take more, so nothing piles up.
final class RelaySide: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var context: ChannelHandlerContext?
    private var peer: RelaySide?
    private var wroteToPeer = false

    /// Pairs two sides; each reads only from now on.
    static func join(_ one: RelaySide, _ other: RelaySide) {
        one.peer = other
        other.peer = one
        one.resumeReading()
        other.resumeReading()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let peer else { return }
        peer.send(unwrapInboundIn(data))
        wroteToPeer = true
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if wroteToPeer {
            wroteToPeer = false
            peer?.context?.flush()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // The peer's reads wait for this side's socket to drain.
        if context.channel.isWritable { peer?.resumeReading() }
        context.fireChannelWritabilityChanged()
    }

    func read(context: ChannelHandlerContext) {
        // Not before the pair is joined, nor while the peer's socket is full.
        guard let peer, peer.context?.channel.isWritable == true else { return }
        context.read()
    }

    func channelInactive(context: ChannelHandlerContext) {
        peer?.context?.close(promise: nil)
        peer = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }

    private func send(_ bytes: ByteBuffer) {
        context?.write(wrapOutboundOut(bytes), promise: nil)
    }

    private func resumeReading() {
        context?.read()
    }
}

let arguments = CommandLine.arguments
guard arguments.count == 3, let listenPort = Int(arguments[1]), let upstreamPort = Int(arguments[2]) else {
    print("usage: ratesync-bench-relay LISTEN-PORT UPSTREAM-PORT")
    exit(2)
}
// An exit on SIGINT that valgrind sees, so that its tools write their reports (_exit: a
// signal handler may call nothing that takes a lock).
signal(SIGINT) { _ in _exit(0) }

let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let server = try ServerBootstrap(group: group)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    // The gateway's own child options.
    .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
    .childChannelOption(.maxMessagesPerRead, value: 4)
    .childChannelInitializer { client in
        let clientSide = RelaySide()
        // Both sides live on the client's event loop, where the upstream connection is made too.
        let upstreamSide = NIOLoopBound(RelaySide(), eventLoop: client.eventLoop)
        do {
            try client.pipeline.syncOperations.addHandler(clientSide)
        } catch {
            return client.eventLoop.makeFailedFuture(error)
        }
        ClientBootstrap(group: client.eventLoop)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { upstream in
                upstream.eventLoop.makeCompletedFuture { try upstream.pipeline.syncOperations.addHandler(upstreamSide.value) }
            }
            .connect(host: "127.0.0.1", port: upstreamPort)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success where client.isActive:
                    RelaySide.join(clientSide, upstreamSide.value)
                case .success(let upstream):
                    // The client left while its upstream connection was being made.
                    upstream.close(promise: nil)
                case .failure:
                    client.close(promise: nil)
                }
            }
        return client.eventLoop.makeSucceededVoidFuture()
    }
    .bind(host: "127.0.0.1", port: listenPort)
    .wait()
try server.closeFuture.wait()
