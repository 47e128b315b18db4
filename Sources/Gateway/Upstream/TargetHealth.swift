import Atomics
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore

/// One target's standing, shared by every event loop of the process: whether passive ejection
/// or active checks keep it out of rotation. Requests read it without a lock (two atomics); only
/// a failure, or the first success after failures, takes the lock.
final class TargetHealth: Sendable {
    let upstream: String
    let target: GatewayConfig.UpstreamTarget
    /// Uptime nanoseconds until which the target is ejected; 0 when it is not.
    private let ejectedUntil = ManagedAtomic<UInt64>(0)
    private let activelyHealthy = ManagedAtomic<Bool>(true)
    private let failing = ManagedAtomic<Bool>(false)
    private let outlier: NIOLockedValueBox<OutlierState>?
    private let logger: Logger
    let ejections: Counter
    /// Responses by status class (1xx..5xx, then errors) and latency, for this target.
    let metrics: GatewayMetrics.UpstreamMetrics
    /// Connect outcomes of every loop's pool: a change is logged once.
    let reachability = UpstreamReachability()
    /// Connections open (or opening) to the target, from every loop, under `max_connections`.
    private let connections: BoundedCounter

    /// Takes a connection's place under `max_connections`; false when all are taken.
    func reserveConnection() -> Bool { connections.take() }

    func connectionClosed() { connections.giveBack() }

    init(upstream: GatewayConfig.Upstream, target: GatewayConfig.UpstreamTarget, metrics: GatewayMetrics, logger: Logger) {
        self.upstream = upstream.name
        self.target = target
        self.outlier = upstream.outlier.map { NIOLockedValueBox(OutlierState($0)) }
        self.connections = BoundedCounter(bound: upstream.maxConnections)
        self.logger = logger
        self.ejections = metrics.targetEjections(upstream: upstream.name, target: target.address)
        self.metrics = metrics.targetMetrics(upstream: upstream.name, target: target.address)
    }

    /// In rotation: not ejected, and healthy by its active checks (when there are any).
    func inRotation(at now: NIODeadline = .now()) -> Bool {
        activelyHealthy.load(ordering: .relaxed) && now.uptimeNanoseconds >= ejectedUntil.load(ordering: .relaxed)
    }

    /// A request to the target failed (a connect error, a reset, 502/503/504).
    func recordFailure() {
        guard let outlier else { return }
        failing.store(true, ordering: .relaxed)
        guard let seconds = outlier.withLockedValue({ $0.failure() }) else { return }
        ejectedUntil.store((NIODeadline.now() + .nanoseconds(Int64(seconds * 1e9))).uptimeNanoseconds, ordering: .relaxed)
        ejections.increment()
        logger.warning(
            "upstream target ejected",
            metadata: ["upstream": "\(upstream)", "target": "\(target.address)", "seconds": "\(seconds)"]
        )
    }

    /// A request got an answer that is no failure.
    func recordSuccess() {
        guard let outlier, failing.load(ordering: .relaxed) else { return }
        failing.store(false, ordering: .relaxed)
        outlier.withLockedValue { $0.success() }
    }

    /// The active checks' verdict changed.
    func setActivelyHealthy(_ healthy: Bool) {
        activelyHealthy.store(healthy, ordering: .relaxed)
        let metadata: Logger.Metadata = ["upstream": "\(upstream)", "target": "\(target.address)"]
        if healthy {
            logger.notice("upstream target healthy again", metadata: metadata)
        } else {
            logger.warning("upstream target unhealthy", metadata: metadata)
        }
    }
}

/// An upstream's targets and their standing, for the whole process (rebuilt with the
/// configuration: a reload starts every target healthy).
final class UpstreamTargets: Sendable {
    let upstream: GatewayConfig.Upstream
    let health: [TargetHealth]
    private let panicking = ManagedAtomic<Bool>(false)
    private let logger: Logger

    init(upstream: GatewayConfig.Upstream, metrics: GatewayMetrics, logger: Logger) {
        self.upstream = upstream
        self.logger = logger
        let targets = upstream.targets.isEmpty ? [GatewayConfig.UpstreamTarget(host: upstream.host, port: upstream.port)] : upstream.targets
        health = targets.map { TargetHealth(upstream: upstream, target: $0, metrics: metrics, logger: logger) }
    }

    /// Which targets are in rotation now; logs once when none is (every target then takes
    /// traffic again) and once when that ends.
    func rotation() -> [Bool] {
        let now = NIODeadline.now()
        let available = health.map { $0.inRotation(at: now) }
        let none = !available.contains(true)
        // Read first: the write (and its log line) happens only when the state changes, so the
        // loops do not contend on this flag per request.
        if panicking.load(ordering: .relaxed) != none, panicking.exchange(none, ordering: .relaxed) != none {
            if none {
                logger.error("every target of the upstream is out of rotation: sending to all of them", metadata: ["upstream": "\(upstream.name)"])
            } else {
                logger.notice("the upstream has targets in rotation again", metadata: ["upstream": "\(upstream.name)"])
            }
        }
        return available
    }
}
