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
