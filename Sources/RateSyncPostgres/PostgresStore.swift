import Crypto
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import RateSync

/// Limiter state in rate-sync's Postgres tables, shared with every gateway and every Python
/// service using rate-sync on the same database: each route's checks are decided by one
/// statement (see `PostgresSchema.checkFunction`), on the server's clock, on the calling event
/// loop's own connection.
///
/// A token bucket here is rate-sync's Postgres one: one admission per interval (`burst` plays no
/// part), which is what its `last_acquisition_at` row means to the Python side.
public final class PostgresStore: ConnectedStore {
    public let id: String
    public var engineName: String { "postgres" }
    public let settings: PostgresStoreSettings
    public let commandTimeout: TimeAmount
    public var addressDescription: String { settings.url.redacted }

    private let schema: PostgresSchema
    private let clients: [NIOLoopBound<PostgresLoopClient>]
    private let clientForLoop: [ObjectIdentifier: Int]
    private let connectionCount = NIOLockedValueBox(0)
    private let logger: Logger

    public var openConnections: Int { connectionCount.withLockedValue { $0 } }

    public init(
        id: String,
        settings: PostgresStoreSettings,
        commandTimeout: TimeAmount,
        group: any EventLoopGroup,
        logger: Logger
    ) throws {
        self.id = id
        self.settings = settings
        self.commandTimeout = commandTimeout
        self.schema = PostgresSchema(settings)
        self.logger = logger
        let tls = settings.url.requireTLS ? try NIOSSLContext(configuration: .makeClientConfiguration()) : nil
        let loops = Array(group.makeIterator())
        let clientCount = max(1, min(loops.count, settings.poolMaxSize))
        let connectionCount = self.connectionCount
        var clients: [NIOLoopBound<PostgresLoopClient>] = []
        for index in 0..<clientCount {
            let loop = loops[index]
            clients.append(
                try loop.submit {
                    NIOLoopBound(
                        PostgresLoopClient(
                            storeID: id,
                            settings: settings,
                            tls: tls,
                            eventLoop: loop,
                            logger: logger,
                            onConnectionChange: { opened in connectionCount.withLockedValue { $0 += opened ? 1 : -1 } }
                        ),
                        eventLoop: loop
                    )
                }.wait()
            )
        }
        var clientForLoop: [ObjectIdentifier: Int] = [:]
        for (index, loop) in loops.enumerated() { clientForLoop[ObjectIdentifier(loop)] = index % clientCount }
        self.clients = clients
        self.clientForLoop = clientForLoop
    }

    /// Creates the tables when `auto_create` asks, then opens every loop's connection.
    public func connect() -> EventLoopFuture<Void> {
        let first = clients[0]
        let deadline = NIODeadline.now() + .seconds(10)
        let created: EventLoopFuture<Void>
        if settings.autoCreate {
            let statements = schema.createTables
            created = first.run(from: first.eventLoop) { client in
                statements.reduce(first.eventLoop.makeSucceededVoidFuture()) { previous, sql in
                    previous.flatMap { client.run(PostgresQuery(unsafeSQL: sql), deadline: deadline).map { _ in } }
                }
            }
        } else {
            created = first.eventLoop.makeSucceededVoidFuture()
        }
        return created.flatMap {
            let opened = self.clients.map { bound in
                bound.run(from: first.eventLoop) { client in
                    client.run(PostgresQuery(unsafeSQL: "SELECT 1 FROM \(self.schema.state) LIMIT 1"), deadline: deadline).map { _ in }
                }
            }
            return EventLoopFuture.andAllSucceed(opened, on: first.eventLoop)
        }
    }

    public func stop() {
        for bound in clients { bound.eventLoop.execute { bound.value.stop() } }
    }

    public func check(_ checks: [LimitCheck], on eventLoop: any EventLoop) -> EventLoopFuture<[Decision]> {
        let query: PostgresQuery
        do {
            query = try Self.checkQuery(checks, marginSeconds: settings.timingMarginMs / 1000)
        } catch {
            return eventLoop.makeFailedFuture(StoreFailure(storeID: id, reason: "cannot encode the check: \(error)", affectsHealth: false))
        }
        let deadline = NIODeadline.now() + commandTimeout
        let storeID = id
        return client(for: eventLoop).run(from: eventLoop) { $0.run(query, deadline: deadline) }
            .flatMapThrowing { result in
                guard let row = result.rows.first else { throw StoreFailure(storeID: storeID, reason: "the check returned no row") }
                return try Self.decisions(from: row.decode([Double].self), count: checks.count, storeID: storeID)
            }
    }

    /// `SELECT pg_temp.ratesync_check(...)` with one array element per check.
    static func checkQuery(_ checks: [LimitCheck], marginSeconds: Double) throws -> PostgresQuery {
        var kinds: [String] = [], ids: [String] = [], a: [Double] = [], b: [Double] = []
        var caps: [Int32] = [], costs: [Int32] = [], shadows: [Bool] = [], waits: [Double] = []
        for check in checks {
            ids.append(Self.groupID(check))
            caps.append(Int32(check.limiter.maxConcurrent ?? 0))
            costs.append(Int32(check.cost))
            shadows.append(check.shadow)
            waits.append(check.shadow ? 0 : check.maxWait)
            switch check.limiter.algorithm {
            case .tokenBucket(let rule?):
                kinds.append("t")
                a.append(1 / rule.ratePerSecond)
                b.append(0)
            case .tokenBucket(nil):
                kinds.append("n")
                a.append(0)
                b.append(0)
            case .slidingWindow(let rule):
                kinds.append("s")
                a.append(Double(rule.limit))
                b.append(rule.windowSeconds)
            }
        }
        var binds = PostgresBindings()
        try binds.append(kinds)
        try binds.append(ids)
        try binds.append(a)
        try binds.append(b)
        try binds.append(caps)
        try binds.append(costs)
        try binds.append(shadows)
        try binds.append(waits)
        try binds.append(marginSeconds)
        return PostgresQuery(
            unsafeSQL: "SELECT pg_temp.ratesync_check($1::text[], $2::text[], $3::float8[], $4::float8[], $5::int[], $6::int[], $7::bool[], $8::float8[], $9::float8)",
            binds: binds
        )
    }

    /// rate-sync's `group_id` column is a VARCHAR(255): a longer key (a long identifier) is kept
    /// as `<limiter>:sha256:<hex>` of its identifier, which no two identifiers share.
    static func groupID(_ check: LimitCheck) -> String {
        guard check.key.unicodeScalars.count > 255 else { return check.key }
        let identifier = check.key.utf8.dropFirst(check.limiter.id.utf8.count + 1)
        let digest = SHA256.hash(data: Array(identifier)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
        return "\(check.limiter.id):sha256:\(digest)"
    }

    /// The function's reply (see `PostgresSchema.checkFunction`) as one decision per check.
    static func decisions(from reply: [Double], count: Int, storeID: String) throws -> [Decision] {
        guard reply.count == 2 + count * 5 else {
            throw StoreFailure(storeID: storeID, reason: "unexpected reply from the check function", affectsHealth: false)
        }
        let (now, delay) = (reply[0], reply[1])
        return (0..<count).map { index in
            let base = 2 + index * 5
            let allowed = reply[base] == 1
            var decision = Decision(
                allowed: allowed,
                limit: Int(reply[base + 1]),
                remaining: max(0, Int(reply[base + 2])),
                retryAfter: reply[base + 3],
                resetAfter: reply[base + 4],
                now: now
            )
            if allowed && delay > 0 {
                decision.delay = delay
                // The time the admission was logged at: what names it to give it back.
                decision.reservation = String(now + delay)
            }
            return decision
        }
    }

    /// Sent once, as rate-sync does: a decrement is not safe to repeat.
    public func release(_ checks: [LimitCheck]) {
        for check in checks where check.limiter.maxConcurrent != nil {
            var binds = PostgresBindings()
            binds.append(Self.groupID(check))
            send(PostgresQuery(unsafeSQL: schema.releaseStatement, binds: binds))
        }
    }

    public func giveBack(_ checks: [LimitCheck]) {
        for check in checks {
            guard let reservation = check.reservation, let time = Double(reservation) else { continue }
            var binds = PostgresBindings()
            binds.append(Self.groupID(check))
            switch check.limiter.algorithm {
            case .tokenBucket(let rule?):
                binds.append(Double(check.cost) / rule.ratePerSecond)
                send(PostgresQuery(unsafeSQL: schema.moveBackStatement, binds: binds))
            case .slidingWindow:
                binds.append(time)
                binds.append(check.cost)
                send(PostgresQuery(unsafeSQL: schema.removeEntriesStatement, binds: binds))
            case .tokenBucket(nil):
                continue
            }
        }
    }

    private func send(_ query: PostgresQuery) {
        let loop = MultiThreadedEventLoopGroup.currentEventLoop ?? clients[0].eventLoop
        let deadline = NIODeadline.now() + commandTimeout
        let logger = self.logger
        _ = client(for: loop).run(from: loop) { $0.run(query, deadline: deadline) }.map { _ in }
            .recover { error in logger.warning("postgres: giving back a slot failed", metadata: ["error": "\(error)"]) }
    }

    public func probe(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        let deadline = NIODeadline.now() + commandTimeout
        return client(for: eventLoop).run(from: eventLoop) { $0.run(PostgresQuery(unsafeSQL: "SELECT 1"), deadline: deadline) }.map { _ in }
    }

    private func client(for eventLoop: any EventLoop) -> NIOLoopBound<PostgresLoopClient> {
        clients[clientForLoop[ObjectIdentifier(eventLoop)] ?? 0]
    }
}
