import NIOCore
import NIOHTTP1

/// What an HTTP/2 request stream hands its request to and tells about its client: the gateway's
/// proxy (one route, one limiter decision, one upstream exchange per stream), or a test's own.
///
/// Held as `any HTTP2StreamDelegate`, not as a generic parameter: NIO calls a connection
/// handler through the ChannelHandler protocol, and for a class generic over its delegate those
/// calls run the code compiled in this module, unspecialised (the gateway's release build showed
/// no specialisation for its proxy, cross-module optimisation or not). A class-bound existential
/// costs the same one table lookup per call to the delegate and keeps everything else concrete.
package protocol HTTP2StreamDelegate: AnyObject {
    /// The stream it serves, before any part: its answers go there.
    func attach(to stream: HTTP2ClientStream)
    /// Whether it takes a request part now; if not, parts wait in the stream (their bytes held
    /// in the windows) until it calls `deliverBufferedParts`.
    func mayRead() -> Bool
    func receive(_ part: HTTPServerRequestPart)
    /// The DATA of an extended CONNECT's stream (RFC 8441): a tunnel's bytes.
    func receiveTunnelBytes(_ bytes: ByteBuffer)
    /// END_STREAM on a tunnel's stream.
    func clientEndedTunnel()
    /// The end of a batch of parts handed over in one read.
    func clientReadComplete()
    /// The stream can take response bytes again (its window, its queue, its connection), or
    /// its queue has filled (told inside the write that filled it, as a channel tells of its
    /// writability): `isWritable` says which. A socket that takes nothing is the connection's
    /// to time (it closes after the send timeout); a window the client never opens, the
    /// delegate's.
    func clientWritabilityChanged()
    /// The stream is over: ended both ways, reset by either side, or its connection gone.
    func clientClosed()
}

/// A connection that can be asked to finish what it is doing and close.
package protocol DrainableConnection: AnyObject {
    func drain()
}

/// Where an event loop's client connections are registered, so that a shutdown can drain them.
package protocol HTTP2ConnectionRegistry: AnyObject {
    var eventLoop: any EventLoop { get }
    /// The loop is shutting down: a connection that opens now drains at once.
    var draining: Bool { get }
    func register(_ connection: any DrainableConnection)
    func unregister(_ connection: any DrainableConnection)
}

/// An object with a deadline kept by StreamDeadlines.
package protocol StreamDeadlineHolder: AnyObject {
    func deadlineReached()
}
