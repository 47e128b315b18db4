import Logging
import NIOCore
import NIOSSL
import PostgresNIO
import RateSync

/// One Postgres connection on one event loop, and only ever touched there: opened on first use,
/// reopened after a failure (no more often than every `reconnectPause`), with the decision
/// function installed in its temporary schema before it serves a query. PostgresNIO queues the
/// loop's queries on it in order.
final class PostgresLoopClient {
    private enum State {
        case idle
        case connecting(EventLoopFuture<PostgresConnection>)
        case connected(PostgresConnection)
        case stopped
    }

    private let storeID: String
    private let settings: PostgresStoreSettings
    private let schema: PostgresSchema
    private let tls: NIOSSLContext?
    private let eventLoop: any EventLoop
    private let logger: Logger
    private let onConnectionChange: @Sendable (Bool) -> Void
    private var state = State.idle
    private var lastFailure: NIODeadline?
    /// Queries sent and not yet answered: bounded, so a hung server cannot pile up requests.
    private var outstanding = 0
    private static let maxOutstanding = 4096
    private let reconnectPause = TimeAmount.milliseconds(250)
    private var nextConnectionID = 0

    init(
        storeID: String,
        settings: PostgresStoreSettings,
        tls: NIOSSLContext?,
        eventLoop: any EventLoop,
        logger: Logger,
        onConnectionChange: @escaping @Sendable (Bool) -> Void
    ) {
        self.storeID = storeID
        self.settings = settings
        self.schema = PostgresSchema(settings)
        self.tls = tls
        self.eventLoop = eventLoop
        self.logger = logger
        self.onConnectionChange = onConnectionChange
    }

    /// Runs `query`, failing with `StoreFailure` when it is not answered by `deadline`. The
    /// answer of a query that timed out is dropped when it comes.
    func run(_ query: PostgresQuery, deadline: NIODeadline) -> EventLoopFuture<PostgresQueryResult> {
        guard outstanding < Self.maxOutstanding else {
            return eventLoop.makeFailedFuture(StoreFailure(storeID: storeID, reason: "too many queries waiting for postgres"))
        }
        let promise = eventLoop.makePromise(of: PostgresQueryResult.self)
        let timeout = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            promise.fail(StoreFailure(storeID: self.storeID, reason: "postgres did not answer within the deadline"))
        }
        outstanding += 1
        connection().flatMap { connection in
            connection.query(query, logger: self.logger)
        }.assumeIsolated().whenComplete { result in
            self.outstanding -= 1
            timeout.cancel()
            switch result {
            case .success(let rows):
                promise.succeed(rows)
            case .failure(let error):
                promise.fail(error as? StoreFailure ?? StoreFailure(storeID: self.storeID, reason: Self.describe(error)))
            }
        }
        return promise.futureResult
    }

    /// The open connection, or the one being opened.
    func connection() -> EventLoopFuture<PostgresConnection> {
        switch state {
        case .connected(let connection) where !connection.isClosed:
            return eventLoop.makeSucceededFuture(connection)
        case .connecting(let future):
            return future
        case .stopped:
            return eventLoop.makeFailedFuture(StoreFailure(storeID: storeID, reason: "store stopped"))
        case .idle, .connected:
            if let lastFailure, .now() < lastFailure + reconnectPause {
                return eventLoop.makeFailedFuture(StoreFailure(storeID: storeID, reason: "postgres unreachable (reconnecting)"))
            }
            let future = open()
            state = .connecting(future)
            return future
        }
    }

    private func open() -> EventLoopFuture<PostgresConnection> {
        var configuration = PostgresConnection.Configuration(
            host: settings.url.host,
            port: settings.url.port,
            username: settings.url.username,
            password: settings.url.password,
            database: settings.url.database,
            tls: tls.map { .require($0) } ?? .disable
        )
        configuration.options.connectTimeout = .seconds(5)
        nextConnectionID += 1
        let functionSQL = schema.checkFunction
        let logger = self.logger
        let connected = PostgresConnection.connect(on: eventLoop, configuration: configuration, id: nextConnectionID, logger: logger)
        let ready = connected.flatMap { (connection: PostgresConnection) -> EventLoopFuture<PostgresConnection> in
            let installed = connection.query(PostgresQuery(unsafeSQL: functionSQL), logger: logger)
            return installed.map { _ in connection }.flatMapError { (error: any Error) -> EventLoopFuture<PostgresConnection> in
                connection.close().flatMapThrowing { () -> PostgresConnection in throw error }
            }
        }
        let promise = eventLoop.makePromise(of: PostgresConnection.self)
        ready.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let connection):
                self.adopt(connection)
                promise.succeed(connection)
            case .failure(let error):
                if case .connecting = self.state { self.state = .idle }
                self.lastFailure = .now()
                promise.fail(StoreFailure(storeID: self.storeID, reason: "cannot connect to \(self.settings.url.redacted): \(Self.describe(error))"))
            }
        }
        return promise.futureResult
    }

    private func adopt(_ connection: PostgresConnection) {
        if case .stopped = state {
            let _: EventLoopFuture<Void> = connection.close()
            return
        }
        state = .connected(connection)
        lastFailure = nil
        onConnectionChange(true)
        connection.closeFuture.assumeIsolated().whenComplete { _ in
            self.onConnectionChange(false)
            if case .connected(let current) = self.state, current === connection { self.state = .idle }
        }
    }

    func stop() {
        if case .connected(let connection) = state { let _: EventLoopFuture<Void> = connection.close() }
        state = .stopped
    }

    /// PostgresNIO's errors print nothing of the server's message by default.
    static func describe(_ error: any Error) -> String {
        if let psql = error as? PSQLError {
            if let message = psql.serverInfo?[.message] { return "postgres: \(message)" }
            return "postgres: \(psql.code)"
        }
        return "\(error)"
    }
}
