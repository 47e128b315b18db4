import Atomics
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// An upstream's targets and their standing, for the whole process (rebuilt with the
/// configuration: a reload starts every target healthy).
///
/// A target given as a host name is one target per address it resolves to, looked up at start
/// and again every `dns_refresh_seconds`: when the addresses change, the list is replaced (a
/// target whose address stays keeps its standing) and its generation moves on, which tells each
/// event loop to rebuild its pools at its next request. Requests read only the generation (an
/// atomic); the list itself is behind a lock, read when it changes.
final class UpstreamTargets: Sendable {
    let upstream: GatewayConfig.Upstream
    private let metrics: GatewayMetrics
    private let current: NIOLockedValueBox<[TargetHealth]>
    private let changes = ManagedAtomic<Int>(0)
    private let panicking = ManagedAtomic<Bool>(false)
    private let logger: Logger

    /// - Parameter resolve: the addresses of a host name (blocking; see HostResolver).
    init(
        upstream: GatewayConfig.Upstream,
        metrics: GatewayMetrics,
        logger: Logger,
        resolve: (String) -> [String] = HostResolver.addresses(of:)
    ) {
        self.upstream = upstream
        hasNames = Self.configured(upstream).contains { $0.isName }
        self.metrics = metrics
        self.logger = logger
        let targets = HostResolver.expand(Self.configured(upstream), resolve: resolve)
        current = NIOLockedValueBox(targets.map { TargetHealth(upstream: upstream, target: $0, metrics: metrics, logger: logger) })
    }

    /// The targets as configured (`url` alone is one).
    static func configured(_ upstream: GatewayConfig.Upstream) -> [GatewayConfig.UpstreamTarget] {
        upstream.targets.isEmpty ? [GatewayConfig.UpstreamTarget(host: upstream.host, port: upstream.port)] : upstream.targets
    }

    /// Whether some target is a host name, whose addresses are looked up again from time to time.
    let hasNames: Bool

    /// Every target now, in order.
    var health: [TargetHealth] { current.withLockedValue { $0 } }

    /// How many times the list was replaced: a loop whose pools were built at another count
    /// builds them again.
    var generation: Int { changes.load(ordering: .relaxed) }

    /// The list and its generation, read together.
    func snapshot() -> (health: [TargetHealth], generation: Int) {
        current.withLockedValue { ($0, changes.load(ordering: .relaxed)) }
    }

    /// Takes a fresh lookup of the names: the targets it gives, each keeping the standing it had
    /// if it was already one. - Returns: whether the list changed.
    @discardableResult
    func update(resolvedTargets targets: [GatewayConfig.UpstreamTarget]) -> Bool {
        let changed = current.withLockedValue { list -> Bool in
            guard list.map(\.target) != targets else { return false }
            list = targets.map { target in
                list.first { $0.target == target } ?? TargetHealth(upstream: upstream, target: target, metrics: metrics, logger: logger)
            }
            changes.wrappingIncrement(ordering: .relaxed)
            return true
        }
        if changed {
            logger.notice(
                "upstream targets changed with their names' addresses",
                metadata: ["upstream": "\(upstream.name)", "targets": "\(targets.map(\.address).joined(separator: ", "))"]
            )
        }
        return changed
    }

    /// Which of `health` (a loop's copy of the list) are in rotation now; logs once when none is
    /// (every target then takes traffic again) and once when that ends.
    func rotation(of health: [TargetHealth]) -> [Bool] {
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
