import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import RateSync

/// Limiter state in Redis, shared exactly by every gateway process using the same Redis: each
/// route's limiters are decided by one atomic script call (EVALSHA, EVAL when the script cache
/// was flushed), on Redis's own clock, in rate-sync's key layout.
/// A Redis-backed store the process connects at start and stops at the end.
public protocol ConnectedRedisStore: ConnectedStore {
    var settings: RedisStoreSettings { get }
}

extension ConnectedRedisStore {
    public var addressDescription: String { settings.url.redacted }
}

public final class RedisStore: ConnectedRedisStore, GroupDecider, LeaseOwner, ReturnSender {
    public let id: String
    public var engineName: String { "redis" }
    public let settings: RedisStoreSettings
    /// How long one command may take before the request stops waiting for it.
    public let commandTimeout: TimeAmount

    /// One client per event loop (fewer when `pool_max_size` is smaller than the loop count:
    /// then loops share, and a request hops to its client's loop and back).
    private let clients: [NIOLoopBound<RedisLoopClient>]
    /// One per client, on the client's loop: the requests of one tick share one script call.
    private let batchers: [NIOLoopBound<LimitBatcher>]
    /// One per client, on the client's loop: the leases of the slots its requests hold.
    private let renewers: [NIOLoopBound<LeaseRenewer>]
    private let clientForLoop: [ObjectIdentifier: Int]
    private let limitScriptSHA: String
    private let returnScriptSHA: String
    /// One per client, on the client's loop: slots and reservations to give back.
    private let returnQueues: [NIOLoopBound<ReturnQueue>]
    private let renewScriptSHA: String
    /// Makes sorted-set members unique across gateway processes and requests.
    private let instanceToken = String(UInt64.random(in: 0...UInt64.max), radix: 36)
    private let sequence = NIOLockedValueBox<UInt64>(0)
    private let connectionCount: NIOLockedValueBox<Int>
    /// The server the latest connection went to (the primary, with sentinels).
    private let lastServer: NIOLockedValueBox<RedisAddress?>
    /// With sentinels: their `+switch-master` announcements, on the first client's loop.
    private let watcher: NIOLoopBound<SentinelWatcher>?

    public var openConnections: Int { connectionCount.withLockedValue { $0 } }

    public var currentPrimary: String? {
        guard settings.sentinel != nil else { return nil }
        return lastServer.withLockedValue { $0?.description }
    }

    public init(
        id: String,
        settings: RedisStoreSettings,
        commandTimeout: TimeAmount,
        group: any EventLoopGroup,
        logger: Logger
    ) throws {
        self.id = id
        self.settings = settings
        self.commandTimeout = commandTimeout
        let connectionCount = NIOLockedValueBox(0)
        self.connectionCount = connectionCount
        let lastServer = NIOLockedValueBox<RedisAddress?>(nil)
        self.lastServer = lastServer
        self.limitScriptSHA = SHA1.hex(LimitScript.source)
        self.returnScriptSHA = SHA1.hex(ReturnQueue.source)
        self.renewScriptSHA = SHA1.hex(LimitScript.renewSource)
        let tls = try Self.tlsContext(settings)
        let loops = Array(group.makeIterator())
        let clientCount = max(1, min(loops.count, settings.poolMaxSize))
        var clients: [NIOLoopBound<RedisLoopClient>] = []
        for index in 0..<clientCount {
            let loop = loops[index]
            // Built on its own loop, which is the only place it is ever touched.
            clients.append(
                try loop.submit {
                    NIOLoopBound(
                        RedisLoopClient(
                            storeID: id,
                            settings: settings,
                            tls: tls,
                            eventLoop: loop,
                            logger: logger,
                            onConnectionChange: { [connectionCount] opened in
                                connectionCount.withLockedValue { $0 += opened ? 1 : -1 }
                            },
                            onConnected: { [lastServer] address in lastServer.withLockedValue { $0 = address } }
                        ),
                        eventLoop: loop
                    )
                }.wait()
            )
        }
        var batchers: [NIOLoopBound<LimitBatcher>] = []
        for bound in clients {
            let loop = bound.eventLoop
            batchers.append(try loop.submit { NIOLoopBound(LimitBatcher(storeID: id, eventLoop: loop), eventLoop: loop) }.wait())
        }
        self.batchers = batchers
        var clientForLoop: [ObjectIdentifier: Int] = [:]
        for (index, loop) in loops.enumerated() { clientForLoop[ObjectIdentifier(loop)] = index % clientCount }
        self.clients = clients
        self.clientForLoop = clientForLoop
        var renewers: [NIOLoopBound<LeaseRenewer>] = []
        for bound in clients {
            let loop = bound.eventLoop
            renewers.append(try loop.submit { NIOLoopBound(LeaseRenewer(eventLoop: loop), eventLoop: loop) }.wait())
        }
        self.renewers = renewers
        returnQueues = try clients.map { bound in
            let loop = bound.eventLoop
            return try loop.submit { NIOLoopBound(ReturnQueue(eventLoop: loop), eventLoop: loop) }.wait()
        }
        if let sentinel = settings.sentinel {
            let loop = clients[0].eventLoop
            let clientsToTell = clients
            watcher = try loop.submit {
                let watcher = SentinelWatcher(settings: settings, sentinel: sentinel, tls: tls, eventLoop: loop, logger: logger) { address in
                    for bound in clientsToTell {
                        bound.eventLoop.execute { bound.value.primaryMoved(to: address) }
                    }
                }
                watcher.start()
                return NIOLoopBound(watcher, eventLoop: loop)
            }.wait()
        } else {
            watcher = nil
        }
        for bound in renewers { try bound.eventLoop.submit { bound.value.owner = self }.wait() }
        for bound in returnQueues { try bound.eventLoop.submit { bound.value.sender = self }.wait() }
    }

    func sendReturns(keys: [String], arguments: [String], on eventLoop: any EventLoop) -> EventLoopFuture<Bool> {
        runScript(sha: returnScriptSHA, source: ReturnQueue.source, keys: keys, arguments: arguments, on: eventLoop)
            .map { reply in
                if case .error = reply { return false }
                return true
            }
    }

    func renew(_ held: LeaseRenewer.Held, holder: String, on eventLoop: any EventLoop) {
        _ = runScript(
            sha: renewScriptSHA,
            source: LimitScript.renewSource,
            keys: [held.counterKey, held.leasesKey],
            arguments: [holder, String(held.seconds)],
            on: eventLoop
        )
    }

    /// For `rediss://`: the system trust store, or only `ca_file`.
    static func tlsContext(_ settings: RedisStoreSettings) throws -> NIOSSLContext? {
        guard settings.url.useTLS else { return nil }
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let caFile = settings.caFile {
            configuration.trustRoots = .file(caFile)
        }
        return try NIOSSLContext(configuration: configuration)
    }

    /// Connects every client and checks that the scripts can be loaded: the startup check.
    public func connect() -> EventLoopFuture<Void> {
        let attempts = clients.map { bound -> EventLoopFuture<Void> in
            bound.eventLoop.flatSubmit {
                let promise = bound.eventLoop.makePromise(of: Void.self)
                bound.value.connect { result in promise.completeWith(result.mapError { $0 as any Error }) }
                return promise.futureResult.flatMap {
                    bound.value.send(["SCRIPT", "LOAD", LimitScript.source], timeout: self.startupTimeout)
                }.flatMapThrowing { reply in
                    guard reply.string == self.limitScriptSHA else {
                        throw StoreFailure(storeID: self.id, reason: "cannot load the limit script: \(reply)")
                    }
                }
            }
        }
        let first = clients[0].eventLoop
        return EventLoopFuture.andAllSucceed(attempts, on: first)
    }

    private var startupTimeout: TimeAmount { TimeAmount(seconds: settings.socketTimeout) }

    public func stop() {
        for bound in clients { bound.eventLoop.execute { bound.value.stop() } }
        for bound in renewers { bound.eventLoop.execute { bound.value.stop() } }
        for bound in returnQueues { bound.eventLoop.execute { bound.value.stop() } }
        if let watcher { watcher.eventLoop.execute { watcher.value.stop() } }
    }

    public func check(_ checks: [LimitCheck], on eventLoop: any EventLoop) -> EventLoopFuture<[Decision]> {
        onClientLoop(of: eventLoop, batchers) { $0.submit(checks, via: self) }
    }

    /// One script call for the checks of several requests, one outcome per request. Called by
    /// the batchers, on the client's loop.
    func decide(groups: [[LimitCheck]], on eventLoop: any EventLoop) -> EventLoopFuture<[Result<[Decision], StoreFailure>]> {
        let token = "\(instanceToken):\(sequence.withLockedValue { $0 &+= 1; return $0 })"
        let (keys, arguments) = LimitScript.keysAndArguments(groups: groups, keyPrefix: settings.keyPrefix, uniqueToken: token)
        let count = groups.reduce(0) { $0 + $1.count }
        let answer = eventLoop.makePromise(of: [Result<[Decision], StoreFailure>].self)
        runScript(sha: limitScriptSHA, source: LimitScript.source, keys: keys, arguments: arguments, on: eventLoop).whenComplete { result in
            do {
                answer.succeed(try self.outcomes(result.get(), count: count, groups: groups, token: token, on: eventLoop))
            } catch {
                answer.fail(error as? StoreFailure ?? StoreFailure(storeID: self.id, reason: "\(error)"))
            }
        }
        return answer.futureResult
    }

    /// One outcome per group from the script's reply, each admitted slot on a lease.
    private func outcomes(
        _ reply: RedisValue,
        count: Int,
        groups: [[LimitCheck]],
        token: String,
        on eventLoop: any EventLoop
    ) throws -> [Result<[Decision], StoreFailure>] {
        if case .error(let message) = reply {
            if message.hasPrefix("READONLY") {
                // This server was demoted: the next connection asks the sentinels again.
                clients[clientForLoop[ObjectIdentifier(eventLoop)] ?? 0].value.primaryMoved(to: nil)
            }
            throw StoreFailure(storeID: id, reason: "redis answered an error: \(message)")
        }
        let decisions = try LimitScript.decisions(from: reply, count: count)
        let outcomes = LimitScript.outcomes(decisions, groups: groups, storeID: id, token: token)
        return LimitScript.attachLeases(
            outcomes,
            groups: groups,
            token: token,
            keyPrefix: settings.keyPrefix,
            hashTagged: false,
            heldBy: renewers[clientForLoop[ObjectIdentifier(eventLoop)] ?? 0].value
        )
    }

    public func release(_ checks: [LimitCheck]) {
        giveBack(checks, droppingLeases: true) { check in
            guard check.limiter.maxConcurrent != nil else { return nil }
            let keys = LimitScript.slotKeys(check, keyPrefix: self.settings.keyPrefix, hashTagged: false)
            return (.slot(counter: keys.counter, leases: keys.leases, holder: check.lease ?? ""), check.limiter.leaseSeconds)
        }
    }

    public func giveBack(_ checks: [LimitCheck]) {
        giveBack(checks, droppingLeases: false) { check in
            guard let (key, arguments) = LimitScript.giveBackKeyAndArguments(check, keyPrefix: self.settings.keyPrefix, hashTagged: false) else {
                return nil
            }
            // Past the window, the entries have left it anyway.
            return (.reservation(key: key, arguments: arguments), check.limiter.algorithm.windowSeconds ?? 0)
        }
    }

    /// Queues on the current loop's client what `item` says each check gives back, and for how
    /// long it is worth trying; drops the leases given back from their renewer.
    private func giveBack(_ checks: [LimitCheck], droppingLeases: Bool, item: (LimitCheck) -> (ReturnQueue.Item, Double)?) {
        guard let loop = MultiThreadedEventLoopGroup.currentEventLoop ?? clients.first?.eventLoop else { return }
        let index = clientForLoop[ObjectIdentifier(loop)] ?? 0
        let (queue, renewer) = (returnQueues[index], renewers[index])
        let items = checks.compactMap(item)
        let leases = droppingLeases ? checks.compactMap { $0.limiter.maxConcurrent != nil ? $0.lease : nil } : []
        guard !items.isEmpty else { return }
        let hand: @Sendable () -> Void = {
            for (item, seconds) in items { queue.value.submit(item, keepTryingFor: seconds) }
            for lease in leases { renewer.value.drop(lease) }
        }
        if queue.eventLoop.inEventLoop { hand() } else { queue.eventLoop.execute(hand) }
    }

    public func probe(on eventLoop: any EventLoop) -> EventLoopFuture<Void> {
        send(["PING"], on: eventLoop).flatMapThrowing { reply in
            if case .error(let message) = reply { throw StoreFailure(storeID: self.id, reason: message) }
        }
    }

    /// EVALSHA, and EVAL with the source when Redis has lost the script (NOSCRIPT): the script
    /// did not run, so running it again is exact.
    private func runScript(
        sha: String,
        source: String,
        keys: [String],
        arguments: [String],
        on eventLoop: any EventLoop
    ) -> EventLoopFuture<RedisValue> {
        let tail = [String(keys.count)] + keys + arguments
        let reply = eventLoop.makePromise(of: RedisValue.self)
        send(["EVALSHA", sha] + tail, on: eventLoop).whenComplete { result in
            if case .success(.error(let message)) = result, message.hasPrefix("NOSCRIPT") {
                self.send(["EVAL", source] + tail, on: eventLoop).cascade(to: reply)
            } else {
                reply.completeWith(result)
            }
        }
        return reply.futureResult
    }

    /// Sends on the client of `eventLoop`.
    func send(_ arguments: [String], on eventLoop: any EventLoop) -> EventLoopFuture<RedisValue> {
        let timeout = commandTimeout
        return onClientLoop(of: eventLoop, clients) { $0.send(arguments, timeout: timeout) }
    }

    /// Runs `body` with the client-loop object (client or batcher) that serves `eventLoop` (when
    /// `pool_max_size` makes loops share a client, another loop's).
    private func onClientLoop<Object, Value: Sendable>(
        of eventLoop: any EventLoop,
        _ objects: [NIOLoopBound<Object>],
        _ body: @escaping @Sendable (Object) -> EventLoopFuture<Value>
    ) -> EventLoopFuture<Value> {
        objects[clientForLoop[ObjectIdentifier(eventLoop)] ?? 0].run(from: eventLoop, body)
    }
}
