import RateSync
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL

/// Active health checks of one target, on one event loop for the whole process: every
/// `interval_ms`, `GET <path>` on a fresh connection (HTTP/1.1, or a stream of a new HTTP/2
/// connection for `protocol = "h2"`); a connect error, no status line within
/// `timeout_ms`, or a status of 500 or more is a failed check. The verdict (after the thresholds)
/// is shared with every loop through the target's `TargetHealth`.
final class HealthChecker {
    private let settings: GatewayConfig.Upstream.HealthCheck
    private let wireProtocol: GatewayConfig.Upstream.WireProtocol
    private let health: TargetHealth
    private let tls: NIOSSLContext?
    private let eventLoop: any EventLoop
    private var state: ActiveHealthState
    private var next: Scheduled<Void>?
    private var stopped = false

    /// - Parameter upstream: one with `[health_check]`.
    init(upstream: GatewayConfig.Upstream, health: TargetHealth, tls: NIOSSLContext?, eventLoop: any EventLoop) {
        let settings = upstream.healthCheck ?? GatewayConfig.Upstream.HealthCheck()
        self.settings = settings
        wireProtocol = upstream.wireProtocol
        self.health = health
        self.tls = tls
        self.eventLoop = eventLoop
        self.state = ActiveHealthState(settings)
    }

    func start() {
        schedule(in: .zero)
    }

    func stop() {
        stopped = true
        next?.cancel()
    }

    private func schedule(in delay: TimeAmount) {
        guard !stopped else { return }
        next = eventLoop.assumeIsolated().scheduleTask(in: delay) { self.check() }
    }

    private func check() {
        let started = NIODeadline.now()
        probe().assumeIsolated().whenComplete { result in
            guard !self.stopped else { return }
            let passed: Bool
            if case .success(let status) = result { passed = status < 500 } else { passed = false }
            if let verdict = self.state.record(passed: passed) { self.health.setActivelyHealthy(verdict) }
            let interval = TimeAmount.milliseconds(Int64(self.settings.intervalMs))
            self.schedule(in: max(.zero, started + interval - .now()))
        }
    }

    /// The status code of one `GET <path>`.
    private func probe() -> EventLoopFuture<Int> {
        let target = health.target
        let timeout = TimeAmount.milliseconds(Int64(settings.timeoutMs))
        let status = eventLoop.makePromise(of: Int.self)
        let request = "GET \(settings.path) HTTP/1.1\r\nHost: \(target.authority)\r\nUser-Agent: ratesync-gateway-health-check\r\nConnection: close\r\n\r\n"
        let wireProtocol = self.wireProtocol
        let path = settings.path
        let tls = self.tls
        let deadline = eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            status.fail(ChannelError.connectTimeout(timeout))
        }
        let connecting = UpstreamConnector.connect(to: target, tls: tls, timeout: timeout, on: eventLoop) { channel in
            let pipeline = channel.pipeline.syncOperations
            switch wireProtocol {
            case .http1:
                try pipeline.addHandler(StatusLineReader(status: status))
            case .h2:
                let multiplexer = try UpstreamH2Pipeline.configure(pipeline)
                _ = UpstreamH2Pipeline.openStream(on: multiplexer, overTLS: tls != nil) {
                    H2StatusReader(status: status, path: path, authority: target.authority)
                }
            }
        }
        connecting.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                // Over HTTP/2 the stream sends its request itself once it is active.
                if wireProtocol == .http1 { channel.writeAndFlush(ByteBuffer(string: request), promise: nil) }
                status.futureResult.assumeIsolated().whenComplete { _ in channel.close(promise: nil) }
            case .failure(let error):
                status.fail(error)
            }
        }
        status.futureResult.assumeIsolated().whenComplete { _ in deadline.cancel() }
        return status.futureResult
    }
}

/// An HTTP/2 check's stream: sends `GET <path>` and reads the answer's status; or, when the
/// path is the standard gRPC health method (`/grpc.health.v1.Health/Check`), calls it for the
/// whole server and passes only on `SERVING` (a gRPC server answers nothing else than gRPC).
private final class H2StatusReader: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart
    private let status: EventLoopPromise<Int>
    private let path: String
    private let authority: String
    private var isGRPC: Bool { path.hasPrefix("/grpc.health.v1.Health/") }
    private var head: HTTPResponseHead?
    private var body = ByteBuffer()

    init(status: EventLoopPromise<Int>, path: String, authority: String) {
        self.status = status
        self.path = path
        self.authority = authority
    }

    func channelActive(context: ChannelHandlerContext) {
        var headers = HTTPHeaders([("host", authority), ("user-agent", "ratesync-gateway-health-check")])
        if isGRPC {
            headers.add(name: "content-type", value: "application/grpc")
            headers.add(name: "te", value: "trailers")
            let request = HTTPRequestHead(version: .http1_1, method: .POST, uri: path, headers: headers)
            context.write(wrapOutboundOut(.head(request)), promise: nil)
            // One uncompressed message, empty: a HealthCheckRequest for the whole server.
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: [0, 0, 0, 0, 0])))), promise: nil)
        } else {
            context.write(wrapOutboundOut(.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard isGRPC else {
                status.succeed(Int(head.status.code))
                return
            }
            self.head = head
        case .body(var part):
            if body.readableBytes < 1024 { body.writeBuffer(&part) }
        case .end(let trailers):
            guard isGRPC, let head else { return }
            // The status comes in the trailers, or in the head of a "trailers-only" answer.
            let grpcStatus = trailers?.first(name: "grpc-status") ?? head.headers.first(name: "grpc-status")
            // A HealthCheckResponse whose status (field 1) is SERVING (1).
            let serving = body.readableBytesView.elementsEqual([0, 0, 0, 0, 2, 0x08, 0x01])
            status.succeed(head.status == .ok && grpcStatus == "0" && serving ? 200 : 503)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        status.fail(ChannelError.inputClosed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        status.fail(error)
        context.close(promise: nil)
    }
}

/// Reads a response's status line (and nothing more: the check closes the connection).
private final class StatusLineReader: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let status: EventLoopPromise<Int>
    private var received = ByteBuffer()

    init(status: EventLoopPromise<Int>) {
        self.status = status
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        received.writeBuffer(&chunk)
        guard let line = received.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            if received.readableBytes > 8192 { status.fail(ChannelError.inputClosed) }
            return
        }
        let text = String(decoding: received.readableBytesView[..<line], as: UTF8.self)
        let parts = text.split(separator: " ")
        if parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let code = Int(parts[1]), (100...999).contains(code) {
            status.succeed(code)
        } else {
            status.fail(ChannelError.inputClosed)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        status.fail(ChannelError.inputClosed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        status.fail(error)
        context.close(promise: nil)
    }
}
