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
    /// Told the server of each connection made.
    private let onConnected: @Sendable (RedisAddress) -> Void
    /// A cluster node's address; nil: the URL's host, or the primary the sentinels name.
    private let fixedAddress: RedisAddress?

    init(
        storeID: String,
        settings: RedisStoreSettings,
        tls: NIOSSLContext?,
        eventLoop: any EventLoop,
        logger: Logger,
        onConnectionChange: @escaping @Sendable (Bool) -> Void,
        onConnected: @escaping @Sendable (RedisAddress) -> Void = { _ in },
        address: RedisAddress? = nil
    ) {
        self.fixedAddress = address
        self.onConnectionChange = onConnectionChange
        self.onConnected = onConnected
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

    /// Closes the connection when it is not to `address` (nil: in any case), so that the next
    /// one goes to the primary the sentinels name now.
    func primaryMoved(to address: RedisAddress?) {
        guard case .connected(let connection) = state, address == nil || connection.address != address else { return }
        logger.notice("redis primary moved; reconnecting", metadata: ["store": "\(storeID)", "from": "\(connection.address)"])
        connection.close()
    }

    private func attempt() {
        guard !stopped else { return }
        state = .connecting
        guard let sentinel = settings.sentinel, fixedAddress == nil else {
            open(address: fixedAddress)
            return
        }
        SentinelLocator.locatePrimary(settings: settings, sentinel: sentinel, tls: tls, on: eventLoop) { located in
            switch located {
            case .success(let address):
                self.open(address: address)
            case .failure(let error):
                self.failed(error)
            }
        }
    }

    private func failed(_ error: RedisConnectError) {
        let waiters = self.waiters
        self.waiters = []
        lastFailure = error.description
        scheduleRetry()
        waiters.forEach { $0(.failure(error)) }
    }

    private func open(address: RedisAddress?) {
        guard !stopped else { return }
        RedisConnection.open(settings: settings, address: address, tls: tls, on: eventLoop) { result in
            guard case .success(let connection) = result, self.settings.sentinel != nil, self.fixedAddress == nil else {
                self.opened(result)
                return
            }
            // A sentinel can name a primary that has just been demoted: check with the server.
            connection.send(["ROLE"], timeout: TimeAmount(seconds: self.settings.socketTimeout)).assumeIsolated().whenComplete { role in
                if case .success(.array(let parts)) = role, parts.first?.string == "master" {
                    self.opened(.success(connection))
                } else {
                    connection.close()
                    self.opened(.failure(.connect("\(connection.address) is not the primary")))
                }
            }
        }
    }

    private func opened(_ result: Result<RedisConnection, RedisConnectError>) {
        let connection: RedisConnection
        switch result {
        case .failure(let error):
            failed(error)
            return
        case .success(let opened):
            connection = opened
        }
        guard !stopped else {
            connection.close()
            return
        }
        let waiters = self.waiters
        self.waiters = []
        state = .connected(connection)
        onConnectionChange(true)
        onConnected(connection.address)
        backoff = .milliseconds(50)
        if hasConnected {
            logger.notice(
                "redis store reconnected",
                metadata: ["store": "\(storeID)", "url": "\(settings.url.redacted)", "server": "\(connection.address)"]
            )
        }
        hasConnected = true
        lastFailure = "connection lost"
        connection.channel.closeFuture.assumeIsolated().whenComplete { _ in
            self.onConnectionChange(false)
            self.connectionLost(connection)
        }
        waiters.forEach { $0(.success(())) }
    }

    /// The address of the open connection, if any.
    var connectedAddress: RedisAddress? {
        if case .connected(let connection) = state { return connection.address }
        return nil
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
