import FuzzSupport
import HTTP2Server
import NIOCore
import NIOEmbedded
import NIOHTTP1

/// libFuzzer's entry point for the HTTP/2 connection as a whole: a client's bytes through the
/// connection handler on an EmbeddedChannel, its streams served by delegates that answer at once
/// (at a request's head or its end) or hold their requests, time moved on between reads
/// (resets' grace, budgets, idleness).
///
/// The input's first byte sets the run: bits 0-3 the size of the pieces the rest arrives in,
/// bit 5 whether each piece moves the clock on by a second, bit 7 that the input brings its own
/// preface and SETTINGS. The streams' delegates take turns at the four ways of serving: answer at
/// the request's end or at its head (the response then ends before the request), each taking
/// the request's parts as they come or holding them until the end of the input. Whatever the bytes, every
/// stream's delegate is told its stream is over once the connection has closed.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTP2Connection(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    guard let control = input.first else { return 0 }
    let piece = Int(control & 0x0F) * 16 + 1
    let moveClock = control & 0x20 != 0
    var bytes: [UInt8] = control & 0x80 == 0 ? HTTP2Wire.preface + [0, 0, 0, 4, 0, 0, 0, 0, 0] : []
    bytes += input.dropFirst()

    let channel = EmbeddedChannel()
    let registry = FuzzRegistry(eventLoop: channel.embeddedEventLoop)
    var delegates: [FuzzDelegate] = []
    let limits = HTTP2ConnectionLimits(
        maxConcurrentStreams: 8,
        maxHeaderListSize: 4096,
        windowTarget: 65_535,
        connectionWindowTarget: 256 * 1024,
        idleTimeout: .seconds(30),
        graceTime: .seconds(5),
        sendTimeout: .seconds(30)
    )
    let handler = HTTP2ConnectionHandler(registry: registry, limits: limits) {
        let turn = delegates.count % 4
        let delegate = FuzzDelegate(holds: turn >= 2, answersAtHead: turn % 2 == 1)
        delegates.append(delegate)
        return delegate
    }
    try! channel.pipeline.syncOperations.addHandler(handler)
    try! channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()

    var offset = 0
    while offset < bytes.count, channel.isActive {
        let chunk = ByteBuffer(bytes: bytes[offset..<min(bytes.count, offset + piece)])
        offset += chunk.readableBytes
        try? channel.writeInbound(chunk)
        channel.pipeline.fireChannelReadComplete()
        if moveClock { channel.embeddedEventLoop.advanceTime(by: .seconds(1)) }
        channel.embeddedEventLoop.run()
        while (try? channel.readOutbound(as: ByteBuffer.self)) != nil {}
    }
    // Held requests are let through before the end, so that both paths run.
    for delegate in delegates { delegate.release() }
    channel.embeddedEventLoop.run()
    _ = try? channel.finish()
    for (index, delegate) in delegates.enumerated() where !delegate.closed {
        fatalError("stream \(index)'s delegate was never told its stream is over")
    }
    return 0
}

/// Answers each request at its head or once it has ended (or holds it until released).
private final class FuzzDelegate: HTTP2StreamDelegate {
    private var holds: Bool
    private let answersAtHead: Bool
    private var stream: HTTP2ClientStream?
    private(set) var closed = false

    init(holds: Bool, answersAtHead: Bool) {
        self.holds = holds
        self.answersAtHead = answersAtHead
    }

    func attach(to stream: HTTP2ClientStream) { self.stream = stream }
    func mayRead() -> Bool { !holds }

    func receive(_ part: HTTPServerRequestPart) {
        switch part {
        case .head where answersAtHead, .end where !answersAtHead: answer()
        default: break
        }
    }

    func receiveTunnelBytes(_ bytes: ByteBuffer) { stream?.write(.body(.byteBuffer(bytes))) }
    func clientEndedTunnel() { stream?.writeAndFlush(.end(nil), promise: nil) }
    func clientReadComplete() {}
    func clientWritabilityChanged() {}
    func clientClosed() {
        closed = true
        stream = nil
    }

    func release() {
        guard holds else { return }
        holds = false
        stream?.deliverBufferedParts()
    }

    private func answer() {
        stream?.write(.head(HTTPResponseHead(version: .http2, status: .ok, headers: ["content-length": "2"])))
        stream?.write(.body(.byteBuffer(ByteBuffer(string: "ok"))))
        stream?.writeAndFlush(.end(nil), promise: nil)
    }
}

private final class FuzzRegistry: HTTP2ConnectionRegistry {
    let eventLoop: any EventLoop
    let draining = false

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func register(_ connection: any DrainableConnection) {}
    func unregister(_ connection: any DrainableConnection) {}
}

#if !FUZZING
/// Without libFuzzer (an ordinary build): replays the inputs named on the command line.
@main
enum ReplayInputs {
    static func main() {
        replayInputs(CommandLine.arguments.dropFirst(), through: fuzzHTTP2Connection)
    }
}
#endif
