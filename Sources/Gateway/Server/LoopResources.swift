import NIOCore

/// What one event loop owns: its upstream pools. Built on the loop, used only on it.
final class LoopResources {
    private(set) var pools: [String: UpstreamPool] = [:]
    let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// The loop's pool for an upstream, created on first use so that a reload that adds an
    /// upstream needs no coordination.
    func pool(for upstream: GatewayConfig.Upstream) -> UpstreamPool {
        if let pool = pools[upstream.name], pool.upstream.host == upstream.host, pool.upstream.port == upstream.port {
            return pool
        }
        let pool = UpstreamPool(upstream: upstream, eventLoop: eventLoop)
        pools[upstream.name]?.closeIdle()
        pools[upstream.name] = pool
        return pool
    }

    func closeIdleConnections() {
        for pool in pools.values { pool.closeIdle() }
    }
}

/// Finds the current loop's resources from any thread-safe context (a channel initializer).
final class LoopResourcesRegistry: Sendable {
    private let byLoop: [ObjectIdentifier: NIOLoopBoundBox<LoopResources?>]

    init(group: any EventLoopGroup) {
        var byLoop: [ObjectIdentifier: NIOLoopBoundBox<LoopResources?>] = [:]
        for loop in group.makeIterator() {
            byLoop[ObjectIdentifier(loop)] = .makeEmptyBox(valueType: LoopResources.self, eventLoop: loop)
        }
        self.byLoop = byLoop
    }

    /// Must be called on `loop`; builds the loop's resources on first use.
    func resources(on loop: any EventLoop) -> LoopResources {
        guard let box = byLoop[ObjectIdentifier(loop)] else {
            preconditionFailure("event loop not part of the gateway's group")
        }
        if let resources = box.value { return resources }
        let resources = LoopResources(eventLoop: loop)
        box.value = resources
        return resources
    }

    /// Runs `body` on every loop that has resources, and completes once all have run.
    func forEachLoop(_ body: @escaping @Sendable (LoopResources) -> Void) -> EventLoopFuture<Void>? {
        let futures = byLoop.values.map { box in
            box.eventLoop.submit { if let resources = box.value { body(resources) } }
        }
        guard let first = futures.first else { return nil }
        return EventLoopFuture.andAllSucceed(futures, on: first.eventLoop)
    }
}
