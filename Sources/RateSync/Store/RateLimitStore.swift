import NIOCore

/// One limiter to consult for one request. The key follows rate-sync's clone-limiter naming,
/// `<limiter_id>:<identifier>`.
public struct LimitCheck: Sendable {
    public let limiter: LimiterConfig
    public let key: String
    /// Units of budget the request spends (token bucket tokens, sliding-window admissions);
    /// a `max_concurrent` slot is one whatever the cost.
    public let cost: Int
    /// A shadow check spends its budget when it has room and the others admit, but never denies:
    /// the all-or-nothing rule binds only the checks that are not shadows.
    public let shadow: Bool
    /// The lease of the slot this check holds (from its decision), once admitted.
    public var lease: String?
    /// Seconds this request may wait for a slot of its rate (the limiter's `timeout`, when the
    /// gateway has room for one more waiting request); 0 denies at once.
    public var maxWait: Double = 0
    /// The reservation a waiting admission holds (from its decision), to give back.
    public var reservation: String?

    public init(limiter: LimiterConfig, identifier: String, cost: Int = 1, shadow: Bool = false, maxWait: Double = 0) {
        self.init(limiter: limiter, key: Self.key(limiter: limiter.id, identifier: identifier), cost: cost, shadow: shadow, maxWait: maxWait)
    }

    /// `<limiter>:<identifier>`, the key a check's state is kept under, written in one pass
    /// into one allocation (an interpolation grew the string piece by piece, once per request).
    public static func key(limiter: String, identifier: String) -> String {
        var limiter = limiter
        var identifier = identifier
        return limiter.withUTF8 { limiter in
            identifier.withUTF8 { identifier in
                let count = limiter.count + 1 + identifier.count
                return String(unsafeUninitializedCapacity: count) { out in
                    _ = out.initialize(fromContentsOf: limiter)
                    out[limiter.count] = UInt8(ascii: ":")
                    _ = out[(limiter.count + 1)...].initialize(fromContentsOf: identifier)
                    return count
                }
            }
        }
    }

    public init(limiter: LimiterConfig, key: String, cost: Int, shadow: Bool, maxWait: Double = 0) {
        self.limiter = limiter
        self.key = key
        self.cost = cost
        self.shadow = shadow
        self.maxWait = maxWait
    }
}

/// Why a store could not decide. The gateway turns it into the limiter's fail policy.
public struct StoreFailure: Error, Sendable, CustomStringConvertible {
    public let storeID: String
    public let reason: String
    /// When the store is expected back (an open breaker knows); nil when unknown.
    public let retryAfter: Double?
    /// False when the failure is one request's own (a key holding a foreign or corrupt value):
    /// the store answered, so the circuit breaker does not count it.
    public let affectsHealth: Bool

    public init(storeID: String, reason: String, retryAfter: Double? = nil, affectsHealth: Bool = true) {
        self.storeID = storeID
        self.reason = reason
        self.retryAfter = retryAfter
        self.affectsHealth = affectsHealth
    }

    public var description: String { "store \"\(storeID)\": \(reason)" }
}

/// Where limiter state lives. The gateway knows stores only through this protocol.
public protocol RateLimitStore: AnyObject, Sendable {
    var id: String { get }
    var engineName: String { get }

    /// Decides every check at once, atomically: either every limiter admits and each consumes
    /// its budget, or none consumes anything (shadow checks: see `LimitCheck.shadow`). Decisions come back in the order of `checks`.
    /// Fails with `StoreFailure` when the store cannot answer.
    func check(_ checks: [LimitCheck], on eventLoop: any EventLoop) -> EventLoopFuture<[Decision]>

    /// Whether the store decides in-process, without I/O: then `checkImmediately` always answers.
    var decidesInProcess: Bool { get }

    /// Decides at once, without I/O, when the store can (an in-process store); nil when the
    /// answer needs a round trip, and then `check` must be used. Same atomicity as `check`.
    func checkImmediately(_ checks: [LimitCheck]) -> [Decision]?

    /// `checkImmediately` for one check, the common route of one limiter: no arrays.
    func checkImmediately(_ check: LimitCheck) -> Decision?

    /// Gives back the `max_concurrent` slots that an admitted `check` took.
    func release(_ checks: [LimitCheck])

    /// Gives back the reservations of admissions that were waiting for their time (decisions
    /// with a `delay`) when their clients left: the token bucket's arrival time moves back, the
    /// window's entries are removed.
    func giveBack(_ checks: [LimitCheck])

    /// Gives back slots taken by decisions marked `decidedLocally` (a store that decides in
    /// process while it cannot reach its backend).
    func releaseDecidedLocally(_ checks: [LimitCheck])

    /// A bounded health probe.
    func probe(on eventLoop: any EventLoop) -> EventLoopFuture<Void>

    /// The circuit breaker's state for health reports: "closed", "open", "half_open", or
    /// "none" for a store without one.
    var breakerStateName: String { get }

    /// Connections to the store open now (0 for an in-process store).
    var openConnections: Int { get }

    /// The server answering now, where that can change (a Sentinel-managed primary); nil
    /// otherwise.
    var currentPrimary: String? { get }

    /// Per node of a clustered store, its circuit breaker's state; nil for other stores.
    var nodeBreakers: [String: String]? { get }
}

/// A store behind a network connection, which the process connects at start and stops at the end.
public protocol ConnectedStore: RateLimitStore {
    /// Where it connects, for messages (a password masked).
    var addressDescription: String { get }
    /// Connects and checks that the store is usable: the startup check.
    func connect() -> EventLoopFuture<Void>
    func stop()
}

extension RateLimitStore {
    public var decidesInProcess: Bool { false }
    public func checkImmediately(_ checks: [LimitCheck]) -> [Decision]? { nil }
    public func checkImmediately(_ check: LimitCheck) -> Decision? { checkImmediately([check])?.first }
    public func releaseDecidedLocally(_ checks: [LimitCheck]) { release(checks) }
    public func giveBack(_ checks: [LimitCheck]) {}
    public var breakerStateName: String { "none" }
    public var openConnections: Int { 0 }
    public var currentPrimary: String? { nil }
    public var nodeBreakers: [String: String]? { nil }
}
