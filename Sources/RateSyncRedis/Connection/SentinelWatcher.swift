import Logging
import NIOCore
import NIOSSL
import RateSync

/// Listens on every sentinel for `+switch-master` of our primary and reports the new address
/// (the first sentinel to announce a failover is acted on; the others repeat it). A lost
/// subscription is made again after a pause. Lives on one event loop.
final class SentinelWatcher {
    private let settings: RedisStoreSettings
    private let sentinel: SentinelSettings
    private let tls: NIOSSLContext?
    private let eventLoop: any EventLoop
    private let logger: Logger
    private let onSwitch: (RedisAddress) -> Void
    private var connections: [RedisConnection] = []
    private var stopped = false

    static let resubscribeDelay: TimeAmount = .seconds(1)

    init(
        settings: RedisStoreSettings,
        sentinel: SentinelSettings,
        tls: NIOSSLContext?,
        eventLoop: any EventLoop,
        logger: Logger,
        onSwitch: @escaping (RedisAddress) -> Void
    ) {
        self.settings = settings
        self.sentinel = sentinel
        self.tls = tls
        self.eventLoop = eventLoop
        self.logger = logger
        self.onSwitch = onSwitch
    }

    func start() {
        for address in sentinel.sentinels { subscribe(to: address) }
    }

    func stop() {
        stopped = true
        connections.forEach { $0.close() }
        connections = []
    }

    private func subscribe(to address: RedisAddress) {
        guard !stopped else { return }
        let side = SentinelLocator.sentinelSide(settings, sentinel)
        RedisConnection.open(settings: side, address: address, tls: tls, on: eventLoop) { result in
            guard case .success(let connection) = result, !self.stopped else {
                if case .success(let connection) = result { connection.close() }
                self.resubscribeLater(to: address)
                return
            }
            self.connections.append(connection)
            connection.handler.onPush = { [weak self] message in self?.received(message) }
            _ = connection.send(["SUBSCRIBE", "+switch-master"], timeout: TimeAmount(seconds: self.settings.socketTimeout))
            connection.channel.closeFuture.assumeIsolated().whenComplete { _ in
                self.connections.removeAll { $0 === connection }
                self.resubscribeLater(to: address)
            }
        }
    }

    private func resubscribeLater(to address: RedisAddress) {
        guard !stopped else { return }
        eventLoop.assumeIsolated().scheduleTask(in: Self.resubscribeDelay) { self.subscribe(to: address) }
    }

    /// `message +switch-master "<name> <old-ip> <old-port> <new-ip> <new-port>"`.
    private func received(_ message: RedisValue) {
        guard case .array(let parts) = message, parts.count == 3, parts[0].string == "message",
            let text = parts[2].string
        else { return }
        let fields = text.split(separator: " ")
        guard fields.count == 5, fields[0] == sentinel.masterName, let port = Int(fields[4]) else { return }
        let address = RedisAddress(host: String(fields[3]), port: port)
        logger.notice("sentinel announced a new primary", metadata: ["primary": "\(address)", "master": "\(sentinel.masterName)"])
        onSwitch(address)
    }
}
