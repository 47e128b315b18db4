import EventLoopSupport
import HTTP2Server
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOSSL

/// How a client connection's pipeline is built: HTTP/1.1, HTTP/2 (each stream driven through the
/// same ProxyHandler as an HTTP/1.1 request, so one limiter decision per stream), over TLS
/// with ALPN choosing between them, or in cleartext with an h2c prior-knowledge sniffer.
struct ConnectionPipelines: Sendable {
    let maxHeaderBytes: Int
    let maxConcurrentStreams: Int
    /// An HTTP/2 connection without open streams for this long is closed (GOAWAY first).
    let idleTimeout: TimeAmount
    /// How long open streams get to finish once an idle or draining connection is closing.
    let graceTime: TimeAmount
    /// An HTTP/2 connection whose socket takes no bytes for this long is closed.
    let sendTimeout: TimeAmount
    /// "https" behind TLS: what X-Forwarded-Proto says.
    let scheme: String
    let resources: LoopResourcesRegistry
    let accessLog: AccessLog?

    /// - Parameter overTLS: the connection is TLS's (whose end is its own alert, not a FIN).
    func configureHTTP1(_ channel: any Channel, overTLS: Bool = false) throws {
        endNegotiation(channel)
        if !overTLS {
            // A client's FIN then closes its side alone (HTTP1ServerCodec tells ProxyHandler): the
            // answers already written go out before the close, instead of being dropped with it.
            try channel.syncOptions?.setOption(ChannelOptions.allowRemoteHalfClosure, value: true)
        }
        let pipeline = channel.pipeline.syncOperations
        // Our own codec: the gateway decides every request's framing from what it parsed, and
        // ProxyHandler queues pipelined requests and answers unreadable ones itself.
        let codec = HTTP1ServerCodec(maxHeadBytes: maxHeaderBytes)
        let proxy = makeProxy(resources.resources(on: channel.eventLoop), ClientPeer(channel))
        codec.proxy = proxy
        try pipeline.addHandler(codec)
        try pipeline.addHandler(proxy)
    }

    func configureHTTP2(_ channel: any Channel) throws {
        endNegotiation(channel)
        // What a stream's handler needs is its connection's: the loop's resources, the peer and
        // the deadline timer are gathered once here.
        let loopResources = resources.resources(on: channel.eventLoop)
        let peer = ClientPeer(channel)
        let deadlines = StreamDeadlines(eventLoop: channel.eventLoop)
        let limits = HTTP2ConnectionLimits(
            maxConcurrentStreams: maxConcurrentStreams,
            maxHeaderListSize: maxHeaderBytes,
            windowTarget: 1 << 20,
            connectionWindowTarget: 8 << 20,
            idleTimeout: idleTimeout,
            graceTime: graceTime,
            sendTimeout: sendTimeout
        )
        try channel.pipeline.syncOperations.addHandler(
            HTTP2ConnectionHandler(registry: loopResources, limits: limits) {
                makeProxy(loopResources, peer, streamDeadlines: deadlines)
            }
        )
    }

    func configureTLS(_ channel: any Channel, context: NIOSSLContext) -> EventLoopFuture<Void> {
        do {
            try startNegotiation(channel)
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return channel.configureHTTP2SecureUpgrade(
            h2ChannelConfigurator: { channel in
                channel.eventLoop.makeCompletedFuture {
                    acknowledgeHandshakeAtOnce(channel)
                    try configureHTTP2(channel)
                }
            },
            http1ChannelConfigurator: { channel in
                channel.eventLoop.makeCompletedFuture {
                    acknowledgeHandshakeAtOnce(channel)
                    try configureHTTP1(channel, overTLS: true)
                }
            }
        )
    }

    /// Sends now the acknowledgement of the client's last handshake bytes: in TLS 1.3 the client
    /// speaks last and its first request follows its Finished at once, held by a client with
    /// Nagle's algorithm on until the Finished is acknowledged. (nginx's OpenSSL answers the
    /// Finished with session tickets, which carry the acknowledgement; the TLS library here sends
    /// none at that point.) Called as the handshake completes, in the read that brought the
    /// Finished.
    private func acknowledgeHandshakeAtOnce(_ channel: any Channel) {
        channel.acknowledgeReceivedBytesAtOnce()
    }

    func addPrefaceSniffer(_ channel: any Channel) throws {
        try startNegotiation(channel)
        try channel.pipeline.syncOperations.addHandler(
            HTTP2PrefaceSniffer(configureHTTP1: { try configureHTTP1($0) }, configureHTTP2: configureHTTP2)
        )
    }

    /// The handler of one HTTP/1.1 connection, or of one HTTP/2 stream (with its connection's
    /// deadline timer).
    private func makeProxy(_ loopResources: LoopResources, _ peer: ClientPeer, streamDeadlines: StreamDeadlines? = nil) -> ProxyHandler {
        ProxyHandler(resources: loopResources, accessLog: accessLog, scheme: scheme, peer: peer, streamDeadlines: streamDeadlines)
    }

    /// Until a TLS or h2c connection has settled on a protocol, it has the idle timeout to do so.
    private func startNegotiation(_ channel: any Channel) throws {
        try channel.pipeline.syncOperations.addHandler(NegotiationDeadline(timeout: idleTimeout))
    }

    /// The protocol's handlers keep their own deadlines from here on.
    private func endNegotiation(_ channel: any Channel) {
        let pipeline = channel.pipeline.syncOperations
        if let context = try? pipeline.context(handlerType: NegotiationDeadline.self) {
            pipeline.removeHandler(context: context, promise: nil)
        }
    }
}
