import Logging
import NIOCore
import NIOSSL

/// One upstream's targets on one event loop: a pool per target, and the loop's own balancer.
final class TargetPools {
    let targets: UpstreamTargets
    /// The targets' list this was built from (see UpstreamTargets.generation).
    let generation: Int
    let pools: [UpstreamPool]
    private let health: [TargetHealth]
    let tls: NIOSSLContext?
    private var selection: TargetSelection

    /// - Parameter previous: this loop's pools before the targets' list changed: a target still
    ///   listed keeps its pool (and its connections); the others' pools are retired.
    init(targets: UpstreamTargets, tls: NIOSSLContext?, eventLoop: any EventLoop, logger: Logger, replacing previous: TargetPools? = nil) {
        self.targets = targets
        self.tls = tls
        let (health, generation) = targets.snapshot()
        self.health = health
        self.generation = generation
        let reusable = previous.flatMap { $0.targets === targets && $0.tls === tls ? $0.pools : nil } ?? []
        pools = health.map { target in
            reusable.first { $0.health === target }
                ?? UpstreamPool(upstream: targets.upstream, health: target, tls: tls, eventLoop: eventLoop, logger: logger)
        }
        for pool in previous?.pools ?? [] where !pools.contains(where: { $0 === pool }) { pool.retire() }
        selection = TargetSelection(balance: targets.upstream.balance, weights: health.map(\.target.weight))
    }

    /// Whether these pools still match the targets' list.
    func serve(_ targets: UpstreamTargets, tls: NIOSSLContext?) -> Bool {
        self.targets === targets && self.tls === tls && generation == targets.generation
    }

    /// The target for a request from `clientIP` that has already tried `tried`; nil when every
    /// target was tried.
    func choose(clientIP: String, tried: [Int]) -> Int? {
        // The usual upstream has one target: no balancing to do.
        if pools.count == 1 { return tried.isEmpty ? 0 : nil }
        let pools = self.pools
        return selection.choose(
            available: targets.rotation(of: health),
            tried: tried,
            busy: { pools[$0].leased },
            clientHash: selection.balance == .clientIPHash ? TargetSelection.hash(clientIP) : 0,
            random: { Int.random(in: 0..<$0) }
        )
    }

    func closeIdle() {
        for pool in pools { pool.closeIdle() }
    }

}
