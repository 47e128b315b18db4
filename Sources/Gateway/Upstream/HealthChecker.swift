import RateSync
import NIOCore
import NIOPosix
import NIOSSL

/// Active health checks of one target, on one event loop for the whole process: every
/// `interval_ms`, `GET <path>` on a fresh connection; a connect error, no status line within
/// `timeout_ms`, or a status of 500 or more is a failed check. The verdict (after the thresholds)
/// is shared with every loop through the target's `TargetHealth`.
final class HealthChecker {
    private let settings: GatewayConfig.Upstream.HealthCheck
    private let health: TargetHealth
    private let tls: NIOSSLContext?
    private let eventLoop: any EventLoop
    private var state: ActiveHealthState
    private var next: Scheduled<Void>?
    private var stopped = false

    init(settings: GatewayConfig.Upstream.HealthCheck, health: TargetHealth, tls: NIOSSLContext?, eventLoop: any EventLoop) {
        self.settings = settings
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
        let request = "GET \(settings.path) HTTP/1.1\r\nHost: \(target.address)\r\nUser-Agent: ratesync-gateway-health-check\r\nConnection: close\r\n\r\n"
        let tls = self.tls
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: TLSServerName.forHost(target.host)))
                    }
                    try channel.pipeline.syncOperations.addHandler(StatusLineReader(status: status))
                }
            }
        let deadline = eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            status.fail(ChannelError.connectTimeout(timeout))
        }
        let connecting: EventLoopFuture<any Channel>
        if let address = try? SocketAddress(ipAddress: target.host, port: target.port) {
            connecting = bootstrap.connect(to: address)
        } else {
            connecting = bootstrap.connect(host: target.host, port: target.port)
        }
        connecting.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let channel):
                channel.writeAndFlush(ByteBuffer(string: request), promise: nil)
                status.futureResult.assumeIsolated().whenComplete { _ in channel.close(promise: nil) }
            case .failure(let error):
                status.fail(error)
            }
        }
        status.futureResult.assumeIsolated().whenComplete { _ in deadline.cancel() }
        return status.futureResult
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
