import NIOCore
import NIOHTTP1
import NIOHTTP2

/// The HTTP/2 client side of a connection to a target (swift-nio-http2's), shared by the
/// session that carries requests and the active checks: the connection's settings, and a
/// stream that speaks HTTP/1-shaped parts.
enum UpstreamH2Pipeline {
    /// Adds HTTP/2 to a new connection's pipeline. Push is off, and a stream the target opens
    /// anyway is closed at once.
    static func configure(_ pipeline: ChannelPipeline.SynchronousOperations) throws -> NIOHTTP2Handler.StreamMultiplexer {
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(parameter: .enablePush, value: 0),
            HTTP2Setting(parameter: .maxConcurrentStreams, value: 100),
            HTTP2Setting(parameter: .initialWindowSize, value: 1 << 20),
            HTTP2Setting(parameter: .maxHeaderListSize, value: UpstreamPool.maxResponseHeadBytes),
        ]
        var stream = NIOHTTP2Handler.StreamConfiguration()
        stream.targetWindowSize = 1 << 20
        return try pipeline.configureHTTP2Pipeline(mode: .client, connectionConfiguration: connection, streamConfiguration: stream) {
            $0.close()
        }
    }

    /// A new stream, `handler` reading and writing its parts.
    /// - Parameter overTLS: whether the connection is https (the `:scheme` of its requests).
    static func openStream(
        on multiplexer: NIOHTTP2Handler.StreamMultiplexer,
        overTLS: Bool,
        handler: @escaping @Sendable () -> any ChannelHandler
    ) -> EventLoopFuture<any Channel> {
        multiplexer.createStreamChannel { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ClientCodec(httpProtocol: overTLS ? .https : .http))
                try stream.pipeline.syncOperations.addHandler(handler())
            }
        }
    }
}
