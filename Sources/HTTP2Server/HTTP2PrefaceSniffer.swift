import NIOCore

/// On a cleartext listener with `h2c = true`: looks at a connection's first bytes and sets the
/// pipeline up for HTTP/2 when they are the HTTP/2 connection preface (prior knowledge), for
/// HTTP/1.1 otherwise; then steps aside, handing on the bytes it read.
package final class HTTP2PrefaceSniffer: ChannelInboundHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = ByteBuffer

    private static let preface = HTTP2Wire.preface

    private var buffered: ByteBuffer?
    private let configureHTTP1: (any Channel) throws -> Void
    private let configureHTTP2: (any Channel) throws -> Void

    package init(
        configureHTTP1: @escaping (any Channel) throws -> Void,
        configureHTTP2: @escaping (any Channel) throws -> Void
    ) {
        self.configureHTTP1 = configureHTTP1
        self.configureHTTP2 = configureHTTP2
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = Self.unwrapInboundIn(data)
        if buffered == nil {
            buffered = incoming
        } else {
            buffered!.writeBuffer(&incoming)
        }
        guard let bytes = buffered else { return }
        let seen = bytes.readableBytesView.prefix(Self.preface.count)
        let isPrefix = seen.elementsEqual(Self.preface.prefix(seen.count))
        // Wait while what came so far could still be the start of the preface.
        if isPrefix && seen.count < Self.preface.count { return }
        do {
            if isPrefix {
                try configureHTTP2(context.channel)
            } else {
                try configureHTTP1(context.channel)
            }
        } catch {
            context.close(promise: nil)
            return
        }
        buffered = nil
        context.fireChannelRead(Self.wrapInboundOut(bytes))
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
