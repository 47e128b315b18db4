import Logging
import NIOCore
import NIOSSL
import RateSync

/// A store's connection on one event loop. Requests of that loop use it without locks or hops;
/// commands issued in one tick leave in one write.
///
/// When the connection is lost the client reconnects in the background with exponential backoff;
/// meanwhile commands fail at once (the limiters' fail policies answer), so no request waits on
/// a Redis that is not there.
final class RedisLoopClient {
    private enum State {
        case idle
        case connecting
        case connected(RedisConnection)
        case waitingToRetry
    }

    let eventLoop: any EventLoop
    private let storeID: String
    private let settings: RedisStoreSettings
    private let tls: NIOSSLContext?
    private let logger: Logger
    private var state: State = .idle
    private var backoff: TimeAmount = .milliseconds(50)
    private var lastFailure = "not connected yet"
    /// Whether a connection was ever made: a later one is a reconnection, worth a log line.
    private var hasConnected = false
    private var waiters: [(Result<Void, RedisConnectError>) -> Void] = []
    private var stopped = false

    private static let maxBackoff: TimeAmount = .seconds(1)

    /// Told when this client's connection opens (true) or closes (false).
    private let onConnectionChange: @Sendable (Bool) -> Void

    init(
        storeID: String,
        settings: RedisStoreSettings,
        tls: NIOSSLContext?,
        eventLoop: any EventLoop,
        logger: Logger,
        onConnectionChange: @escaping @Sendable (Bool) -> Void
    ) {
        self.onConnectionChange = onConnectionChange
        self.storeID = storeID
        self.settings = settings
        self.tls = tls
        self.eventLoop = eventLoop
        self.logger = logger
    }

    var isConnected: Bool {
        if case .connected(let connection) = state { return connection.channel.isActive }
        return false
    }

    /// Sends a command on the ready connection, or fails at once when there is none.
    func send(_ arguments: [String], timeout: TimeAmount) -> EventLoopFuture<RedisValue> {
        if case .connected(let connection) = state, connection.channel.isActive {
            return connection.send(arguments, timeout: timeout)
        }
        connectIfIdle()
        return eventLoop.makeFailedFuture(RedisConnectionError.notConnected(reason: lastFailure))
    }

    /// Connects now (at startup); completes with the first attempt's outcome.
    func connect(_ completion: @escaping (Result<Void, RedisConnectError>) -> Void) {
        if isConnected {
            completion(.success(()))
            return
        }
        waiters.append(completion)
        if case .connecting = state { return }
        attempt()
    }

    func stop() {
        stopped = true
        if case .connected(let connection) = state { connection.close() }
        state = .idle
    }

    private func connectIfIdle() {
        if case .idle = state { attempt() }
    }

    private func attempt() {
        guard !stopped else { return }
        state = .connecting
        RedisConnection.open(settings: settings, tls: tls, on: eventLoop) { result in
            let waiters = self.waiters
            self.waiters = []
            switch result {
            case .success(let connection):
                guard !self.stopped else {
                    connection.close()
                    return
                }
                self.state = .connected(connection)
                self.onConnectionChange(true)
                self.backoff = .milliseconds(50)
                if self.hasConnected {
                    self.logger.notice("redis store reconnected", metadata: ["store": "\(self.storeID)", "url": "\(self.settings.url.redacted)"])
                }
                self.hasConnected = true
                self.lastFailure = "connection lost"
                connection.channel.closeFuture.assumeIsolated().whenComplete { _ in
                    self.onConnectionChange(false)
                    self.connectionLost(connection)
                }
                waiters.forEach { $0(.success(())) }
            case .failure(let error):
                self.lastFailure = error.description
                self.scheduleRetry()
                waiters.forEach { $0(.failure(error)) }
            }
        }
    }

    private func connectionLost(_ connection: RedisConnection) {
        guard case .connected(let current) = state, current === connection, !stopped else { return }
        logger.warning("redis store connection lost", metadata: ["store": "\(storeID)", "url": "\(settings.url.redacted)"])
        state = .idle
        attempt()
    }

    private func scheduleRetry() {
        state = .waitingToRetry
        let delay = backoff
        backoff = min(backoff * 2, Self.maxBackoff)
        eventLoop.assumeIsolated().scheduleTask(in: delay) {
            if case .waitingToRetry = self.state { self.attempt() }
        }
    }
}
