import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import RateSync
import Logging

/// A kept-alive connection to an upstream, leased to one exchange at a time.
final class UpstreamConnection {
    let channel: any Channel
    let handler: UpstreamHandler
    /// True once it has carried a request: a reused connection may have been closed by the
    /// upstream while idle, which is worth one retry.
    var hasBeenUsed = false

    init(channel: any Channel, handler: UpstreamHandler) {
        self.channel = channel
        self.handler = handler
    }
}

/// Kept-alive connections to one target of an upstream, owned by one event loop and only touched
/// on it, so it needs no lock: an exchange and its upstream connection always share the client's
/// loop.
final class UpstreamPool {
    let upstream: GatewayConfig.Upstream
    /// The target's standing, shared with the other loops' pools for it.
    let health: TargetHealth
    var target: GatewayConfig.UpstreamTarget { health.target }
    let tls: NIOSSLContext?
    let eventLoop: any EventLoop
    private let logger: Logger
    private var idle: [UpstreamConnection] = []
    /// Connections handed out and not yet back or closed: this loop's requests in flight to the
    /// target (what `least_request` compares). Each connection's handler says whether it is one
    /// of them.
    private(set) var leased = 0
    /// How large a response head (or trailer section) an upstream may send.
    static let maxResponseHeadBytes = 64 * 1024
    /// For `protocol = "h2"`: the target's HTTP/2 connection, whose streams are leased instead
    /// of connections.
    private var h2Session: UpstreamH2Session?

    init(
        upstream: GatewayConfig.Upstream,
        health: TargetHealth,
        tls: NIOSSLContext?,
        eventLoop: any EventLoop,
        logger: Logger
    ) {
        self.upstream = upstream
        self.health = health
        self.tls = tls
        self.eventLoop = eventLoop
        self.logger = logger
        if upstream.wireProtocol == .h2 { h2Session = UpstreamH2Session(pool: self) }
    }


    /// Hands out the most recently used idle connection (warmest), or connects a new one while
    /// the target's `max_connections` allow, or waits for one up to the connect timeout
    /// (then fails with `UpstreamBusy`).
    func acquire(_ completion: @escaping (Result<UpstreamConnection, any Error>) -> Void) {
        eventLoop.assertInEventLoop()
        if let h2Session {
            h2Session.openStream { result in
                switch result {
                case .success(let stream): self.lease(stream, to: completion)
                case .failure: completion(result)
                }
            }
            return
        }
        if let connection = leaseIdle() {
            completion(.success(connection))
            return
        }
        guard waiters.isEmpty, health.reserveConnection() else {
            waiters.append(Waiter(completion: completion, deadline: .now() + .milliseconds(Int64(upstream.connectTimeoutMs))))
            scheduleWaiterCheck()
            return
        }
        connectReserved(completion)
    }

    /// A kept-alive HTTP/1.1 connection at once, when one is idle and nobody waits for one.
    func leaseIdle() -> UpstreamConnection? {
        eventLoop.assertInEventLoop()
        guard h2Session == nil, waiters.isEmpty, let connection = takeIdle() else { return nil }
        markLeased(connection.handler)
        return connection
    }

    private func takeIdle() -> UpstreamConnection? {
        while let connection = idle.popLast() {
            if connection.channel.isActive { return connection }
        }
        return nil
    }

    private func lease(_ connection: UpstreamConnection, to completion: (Result<UpstreamConnection, any Error>) -> Void) {
        markLeased(connection.handler)
        completion(.success(connection))
    }

    private func markLeased(_ handler: UpstreamHandler) {
        guard !handler.isLeased else { return }
        handler.isLeased = true
        leased += 1
    }

    private func markReturned(_ handler: UpstreamHandler) {
        guard handler.isLeased else { return }
        handler.isLeased = false
        leased -= 1
    }

    /// Connects on a place `reserveConnection` took; the place is given back when the connect
    /// fails or the connection closes.
    private func connectReserved(_ completion: @escaping (Result<UpstreamConnection, any Error>) -> Void) {
        let health = self.health
        connect { result in
            switch result {
            case .success(let connection):
                connection.channel.closeFuture.whenComplete { _ in health.connectionClosed() }
                self.lease(connection, to: completion)
            case .failure:
                health.connectionClosed()
                completion(result)
            }
        }
    }

    /// A request waiting for a connection under `max_connections`.
    private struct Waiter {
        let completion: (Result<UpstreamConnection, any Error>) -> Void
        let deadline: NIODeadline
    }

    private var waiters = CircularBuffer<Waiter>()
    private var waiterCheck: Scheduled<Void>?

    /// Waiters are served as this loop's connections come back or close, and every 10 ms (a
    /// place freed on another loop tells nobody here); past its deadline a waiter fails.
    private func scheduleWaiterCheck() {
        guard waiterCheck == nil else { return }
        waiterCheck = eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(10)) {
            self.waiterCheck = nil
            self.serveWaiters()
        }
    }

    private func serveWaiters() {
        let now = NIODeadline.now()
        while let first = waiters.first {
            if first.deadline <= now {
                waiters.removeFirst()
                first.completion(.failure(UpstreamBusy()))
            } else if let connection = takeIdle() {
                waiters.removeFirst()
                lease(connection, to: first.completion)
            } else if health.reserveConnection() {
                waiters.removeFirst()
                connectReserved(first.completion)
            } else {
                break
            }
        }
        if !waiters.isEmpty { scheduleWaiterCheck() }
    }

    /// No longer used for new requests (a reload replaced it, or its target left the list):
    /// idle connections close now, and the ones in flight when their exchanges end.
    private var retired = false

    func retire() {
        retired = true
        closeIdleConnections()
        closeRetiredSessionIfDone()
    }

    /// A retired pool's HTTP/2 connection closes once its last stream has ended.
    private func closeRetiredSessionIfDone() {
        if retired, leased == 0 { h2Session?.close() }
    }

    /// Takes a connection back after a complete exchange, or closes it when it cannot be reused.
    func release(_ connection: UpstreamConnection, reusable: Bool) {
        eventLoop.assertInEventLoop()
        markReturned(connection.handler)
        connection.handler.delegate = nil
        connection.handler.resumeReads()
        if h2Session != nil {
            // A stream carries one request: it closes by itself once both sides ended, and is
            // reset if ours did not.
            if !reusable { connection.handler.close() }
            closeRetiredSessionIfDone()
            return
        }
        guard reusable, !retired, !connection.handler.receivedBytesOutOfTurn, connection.channel.isActive,
            idle.count < upstream.maxIdleConnections
        else {
            connection.handler.close()
            return
        }
        connection.hasBeenUsed = true
        idle.append(connection)
        if !waiters.isEmpty { serveWaiters() }
    }

    /// A connection closed; if it was idle here, forget it.
    func connectionClosed(_ handler: UpstreamHandler) {
        idle.removeAll { $0.handler === handler }
        markReturned(handler)
        closeRetiredSessionIfDone()
        if !waiters.isEmpty { serveWaiters() }
    }

    /// Closes every idle connection (shutdown).
    func closeIdle() {
        closeIdleConnections()
        h2Session?.close()
    }

    private func closeIdleConnections() {
        let connections = idle
        idle.removeAll()
        for connection in connections { connection.handler.close() }
    }

    private func connect(_ completion: @escaping (Result<UpstreamConnection, any Error>) -> Void) {
        let connecting = UpstreamConnector.connect(to: target, tls: tls, timeout: connectTimeout, on: eventLoop) { channel in
            // Requests are written in the framing the proxy decided; a response ends where its
            // framing says, and anything after it closes the connection.
            let pipeline = channel.pipeline.syncOperations
            let handler = UpstreamHandler()
            let codec = HTTP1ClientCodec(maxHeadBytes: Self.maxResponseHeadBytes)
            codec.upstream = handler
            handler.codec = codec
            try pipeline.addHandler(codec)
            try pipeline.addHandler(handler)
        }
        connecting.assumeIsolated().whenComplete { result in
            switch result {
            case .failure(let error):
                self.connectFinished(error: error)
                completion(.failure(error))
            case .success(let channel):
                guard let handler = try? channel.pipeline.syncOperations.handler(type: UpstreamHandler.self) else {
                    channel.close(promise: nil)
                    completion(.failure(ChannelError.ioOnClosedChannel))
                    return
                }
                handler.pool = self
                self.connectFinished(error: nil)
                completion(.success(UpstreamConnection(channel: channel, handler: handler)))
            }
        }
    }

    var connectTimeout: TimeAmount { .milliseconds(Int64(upstream.connectTimeoutMs)) }

    func connectFinished(error: (any Error)?) {
        guard health.reachability.changes(toReachable: error == nil) else { return }
        if let error {
            logger.warning(
                "upstream unreachable",
                metadata: ["upstream": "\(upstream.name)", "address": "\(target.address)", "cause": "\(error)"]
            )
        } else {
            logger.notice("upstream reachable again", metadata: ["upstream": "\(upstream.name)", "address": "\(target.address)"])
        }
    }
}

/// Every connection `max_connections` allows to a target stayed busy for the connect timeout.
struct UpstreamBusy: Error {}

/// Whether an upstream was reachable at the last connect, across all event loops, so that a
/// change is logged once, not once per loop or per request.
final class UpstreamReachability: Sendable {
    private let reachable = NIOLockedValueBox(true)

    /// Records the outcome; true when it differs from the last one.
    func changes(toReachable now: Bool) -> Bool {
        reachable.withLockedValue { last in
            defer { last = now }
            return last != now
        }
    }
}
