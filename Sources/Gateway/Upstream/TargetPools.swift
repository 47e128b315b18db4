import Logging
import NIOCore
import NIOSSL

/// One upstream's targets on one event loop: a pool per target, and the loop's own balancer.
final class TargetPools {
    let targets: UpstreamTargets
    let pools: [UpstreamPool]
    let tls: NIOSSLContext?
    private var selection: TargetSelection

    init(targets: UpstreamTargets, tls: NIOSSLContext?, eventLoop: any EventLoop, logger: Logger) {
        self.targets = targets
        self.tls = tls
        pools = targets.health.map { UpstreamPool(upstream: targets.upstream, health: $0, tls: tls, eventLoop: eventLoop, logger: logger) }
        selection = TargetSelection(balance: targets.upstream.balance, weights: targets.health.map(\.target.weight))
    }

    /// The target for a request from `clientIP` that has already tried `tried`; nil when every
    /// target was tried.
    func choose(clientIP: String, tried: [Int]) -> Int? {
        // The usual upstream has one target: no balancing to do.
        if pools.count == 1 { return tried.isEmpty ? 0 : nil }
        let pools = self.pools
        return selection.choose(
            available: targets.rotation(),
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
