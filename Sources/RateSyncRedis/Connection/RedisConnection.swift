#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix
import NIOSSL
import RateSync

/// One connection to Redis, ready for commands: connected, TLS-wrapped for `rediss://`,
/// authenticated, on the right database.
final class RedisConnection {
    let channel: any Channel
    let handler: RedisProtocolHandler
    let address: RedisAddress

    private init(channel: any Channel, handler: RedisProtocolHandler, address: RedisAddress) {
        self.channel = channel
        self.handler = handler
        self.address = address
    }

    func send(_ arguments: [String], timeout: TimeAmount) -> EventLoopFuture<RedisValue> {
        handler.send(arguments, deadline: .now() + timeout)
    }

    func close() {
        channel.close(promise: nil)
    }

    /// Connects and runs the handshake (AUTH, SELECT). Completes on `eventLoop`.
    /// - Parameter address: where to connect; the URL's host and port by default.
    static func open(
        settings: RedisStoreSettings,
        address: RedisAddress? = nil,
        tls: NIOSSLContext?,
        on eventLoop: any EventLoop,
        _ completion: @escaping (Result<RedisConnection, RedisConnectError>) -> Void
    ) {
        let url = settings.url
        let target = address ?? RedisAddress(host: url.host, port: url.port)
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(TimeAmount(seconds: settings.socketConnectTimeout))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tls, serverHostname: TLSServerName.forHost(target.host))
                        )
                    }
                    try channel.pipeline.syncOperations.addHandler(WriteCoalescingHandler())
                    try channel.pipeline.syncOperations.addHandler(RedisProtocolHandler(eventLoop: channel.eventLoop))
                }
            }
        bootstrap.connect(host: target.host, port: target.port).assumeIsolated().whenComplete { result in
            switch result {
            case .failure(let error):
                completion(.failure(.connect(describeConnectFailure(error))))
            case .success(let channel):
                do {
                    let handler = try channel.pipeline.syncOperations.handler(type: RedisProtocolHandler.self)
                    let connection = RedisConnection(channel: channel, handler: handler, address: target)
                    connection.handshake(settings: settings) { outcome in
                        if case .failure = outcome { connection.close() }
                        completion(outcome.map { connection })
                    }
                } catch {
                    channel.close(promise: nil)
                    completion(.failure(.connect(String(describing: error))))
                }
            }
        }
    }

    private func handshake(settings: RedisStoreSettings, _ completion: @escaping (Result<Void, RedisConnectError>) -> Void) {
        let timeout = TimeAmount(seconds: settings.socketTimeout)
        var steps: [(command: [String], failure: (String) -> RedisConnectError)] = []
        if let password = settings.url.password {
            let command = settings.url.username.map { ["AUTH", $0, password] } ?? ["AUTH", password]
            steps.append((command, { .authentication($0) }))
        }
        if let database = settings.url.database, database != 0 {
            steps.append((["SELECT", String(database)], { .database($0) }))
        }
        steps.append((["PING"], { .connect($0) }))
        // Pipelined: all steps leave in one write; the first failure decides.
        let replies = steps.map { send($0.command, timeout: timeout) }
        EventLoopFuture.whenAllComplete(replies, on: channel.eventLoop).assumeIsolated().whenSuccess { results in
            for (step, result) in zip(steps, results) {
                switch result {
                case .success(.error(let message)):
                    completion(.failure(step.failure(message)))
                    return
                case .failure(let error):
                    completion(.failure(.connect(String(describing: error))))
                    return
                case .success:
                    continue
                }
            }
            completion(.success(()))
        }
    }
}

/// Why a connection could not be made ready. Never carries the password.
public enum RedisConnectError: Error, CustomStringConvertible {
    case connect(String)
    case authentication(String)
    case database(String)

    public var description: String {
        switch self {
        case .connect(let reason): return "cannot connect: \(reason)"
        case .authentication(let reason): return "authentication failed: \(reason)"
        case .database(let reason): return "cannot select the database: \(reason)"
        }
    }
}

/// The cause of a failed connect in an operator's words ("Connection refused", "timed out").
func describeConnectFailure(_ error: any Error) -> String {
    if let connection = error as? NIOConnectionError {
        if let first = connection.connectionErrors.first { return describeConnectFailure(first.error) }
        if let dns = connection.dnsAError ?? connection.dnsAAAAError { return "cannot resolve the host (\(dns))" }
        return "no address to connect to"
    }
    if let io = error as? IOError {
        return String(cString: strerror(io.errnoCode))
    }
    if let channel = error as? ChannelError, case .connectTimeout(let after) = channel {
        return "timed out after \(after.nanoseconds / 1_000_000) ms"
    }
    return String(describing: error)
}
