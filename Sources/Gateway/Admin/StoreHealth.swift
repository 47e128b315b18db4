import NIOCore
import RateSync

/// Probes every store in use, each within a bounded time, for `/health/rate-limiter`.
public struct StoreHealth: Sendable {
    public struct Report: Sendable {
        public var healthy: Bool
        public var json: String
    }

    let stores: [any RateLimitStore]
    let probeTimeout: TimeAmount

    public init(stores: [any RateLimitStore], probeTimeout: TimeAmount = .seconds(1)) {
        self.stores = stores
        self.probeTimeout = probeTimeout
    }

    public func report(on eventLoop: any EventLoop) -> EventLoopFuture<Report> {
        let timeout = probeTimeout
        let probes = stores.map { store -> EventLoopFuture<String?> in
            let promise = eventLoop.makePromise(of: String?.self)
            let timer = eventLoop.scheduleTask(in: timeout) {
                promise.succeed("no answer within \(timeout.nanoseconds / 1_000_000) ms")
            }
            store.probe(on: eventLoop).whenComplete { result in
                timer.cancel()
                switch result {
                case .success: promise.succeed(nil)
                case .failure(let error): promise.succeed("\(error)")
                }
            }
            return promise.futureResult
        }
        let stores = self.stores
        return EventLoopFuture.whenAllSucceed(probes, on: eventLoop).map { failures in
            var entries: [String] = []
            var firstError: String?
            for (store, failure) in zip(stores, failures) {
                let reachable = failure == nil
                var entry = "\(ErrorBody.jsonString(store.id)):{\"engine\":\(ErrorBody.jsonString(store.engineName)),"
                entry += "\"reachable\":\(reachable),\"breaker\":\"\(store.breakerStateName)\""
                if let primary = store.currentPrimary { entry += ",\"primary\":\(ErrorBody.jsonString(primary))" }
                if let nodes = store.nodeBreakers {
                    let listed = nodes.sorted { $0.key < $1.key }.map { "\(ErrorBody.jsonString($0.key)):{\"breaker\":\(ErrorBody.jsonString($0.value))}" }
                    entry += ",\"nodes\":{\(listed.joined(separator: ","))}"
                }
                if let failure {
                    entry += ",\"error\":\(ErrorBody.jsonString(failure))"
                    firstError = firstError ?? "store \(store.id): \(failure)"
                }
                entries.append(entry + "}")
            }
            let storesJSON = "{" + entries.joined(separator: ",") + "}"
            if let firstError {
                return Report(
                    healthy: false,
                    json: "{\"status\":\"unhealthy\",\"error\":\(ErrorBody.jsonString(firstError)),\"stores\":\(storesJSON)}"
                )
            }
            return Report(healthy: true, json: "{\"status\":\"healthy\",\"stores\":\(storesJSON)}")
        }
    }
}
