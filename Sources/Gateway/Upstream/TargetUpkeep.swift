import NIOCore
import NIOPosix
import NIOSSL

/// One upstream's background work, on one event loop for the whole process: the active checks
/// of its targets (one checker per target), and the lookup of its targets' host names every
/// `dns_refresh_seconds`, after which checks start for new addresses and stop for gone ones.
final class TargetUpkeep {
    private let targets: UpstreamTargets
    private let tls: NIOSSLContext?
    private let eventLoop: any EventLoop
    private var checkers: [ObjectIdentifier: HealthChecker] = [:]
    private var nextLookup: Scheduled<Void>?
    private var stopped = false

    init(targets: UpstreamTargets, tls: NIOSSLContext?, eventLoop: any EventLoop) {
        self.targets = targets
        self.tls = tls
        self.eventLoop = eventLoop
    }

    /// Whether the upstream needs any: active checks, or names to look up again.
    static func needed(for targets: UpstreamTargets) -> Bool {
        targets.upstream.healthCheck != nil || (targets.hasNames && targets.upstream.dnsRefreshSeconds > 0)
    }

    func start() {
        syncCheckers()
        scheduleLookup()
    }

    func stop() {
        stopped = true
        nextLookup?.cancel()
        for checker in checkers.values { checker.stop() }
        checkers.removeAll()
    }

    private func syncCheckers() {
        guard targets.upstream.healthCheck != nil, !stopped else { return }
        let health = targets.health
        let listed = Set(health.map(ObjectIdentifier.init))
        for (id, checker) in checkers where !listed.contains(id) {
            checker.stop()
            checkers[id] = nil
        }
        for target in health where checkers[ObjectIdentifier(target)] == nil {
            let checker = HealthChecker(upstream: targets.upstream, health: target, tls: tls, eventLoop: eventLoop)
            checkers[ObjectIdentifier(target)] = checker
            checker.start()
        }
    }

    private func scheduleLookup() {
        let seconds = targets.upstream.dnsRefreshSeconds
        guard targets.hasNames, seconds > 0, !stopped else { return }
        nextLookup = eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(seconds * 1e9))) {
            self.lookUp()
        }
    }

    private func lookUp() {
        let configured = UpstreamTargets.configured(targets.upstream)
        NIOThreadPool.singleton.runIfActive(eventLoop: eventLoop) {
            HostResolver.expand(configured)
        }.assumeIsolated().whenComplete { result in
            guard !self.stopped else { return }
            if case .success(let resolved) = result, self.targets.update(resolvedTargets: resolved) {
                self.syncCheckers()
            }
            self.scheduleLookup()
        }
    }
}
