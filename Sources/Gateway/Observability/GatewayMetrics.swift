import Metrics
import RateSync

/// Every metric the gateway keeps, created once per configuration so that the request path only
/// increments objects it already holds (no label lookups per request). Labels name routes,
/// limiters, stores and upstreams: never a client or an identifier.
///
/// | name | type | labels |
/// |---|---|---|
/// | ratesync_decisions_total | counter | route, limiter, outcome (allowed, limited, failed_open, failed_closed, shadow_denied) |
/// | ratesync_store_latency_seconds | histogram | store |
/// | ratesync_store_breaker_state | gauge (0 closed, 1 half-open, 2 open) | store |
/// | ratesync_store_connections | gauge | store |
/// | ratesync_upstream_responses_total | counter | upstream, status_class (1xx..5xx, or "error") |
/// | ratesync_upstream_latency_seconds | histogram | upstream |
/// | ratesync_upstream_target_responses_total | counter | upstream, target, status_class |
/// | ratesync_upstream_target_latency_seconds | histogram | upstream, target |
/// | ratesync_upstream_target_healthy | gauge (0/1: in rotation) | upstream, target |
/// | ratesync_upstream_ejections_total | counter | upstream, target |
/// | ratesync_denial_cache_hits_total | counter | store |
/// | ratesync_requests_in_flight | gauge | |
/// | ratesync_waiting_requests | gauge (requests waiting for a slot a limiter's `timeout` allows) | |
/// | ratesync_config_reloads_total | counter | result (success, failure) |
public final class GatewayMetrics: Sendable {
    public enum Outcome: Int, CaseIterable, Sendable {
        case allowed, limited, failedOpen, failedClosed, shadowDenied

        public var label: String {
            switch self {
            case .allowed: return "allowed"
            case .limited: return "limited"
            case .failedOpen: return "failed_open"
            case .failedClosed: return "failed_closed"
            case .shadowDenied: return "shadow_denied"
            }
        }
    }

    /// One counter per outcome for one route and limiter.
    public struct DecisionCounters: Sendable {
        let byOutcome: [Counter]
        public func record(_ outcome: Outcome) { byOutcome[outcome.rawValue].increment() }
    }

    /// The response counters and latency histogram of one upstream.
    public struct UpstreamMetrics: Sendable {
        /// 1xx..5xx at 0...4; connection errors and timeouts at 5.
        let responses: [Counter]
        let latency: LatencyHistogram

        /// An upstream's answer, placed once for every UpstreamMetrics it is recorded in (the
        /// upstream's and its target's).
        public struct Answer {
            /// 1xx..5xx at 0...4; anything else at 5.
            let statusClass: Int
            let nanoseconds: Int64
            let bucket: Int

            public init(statusCode: Int, nanoseconds: Int64) {
                statusClass = (100...599).contains(statusCode) ? statusCode / 100 - 1 : 5
                self.nanoseconds = nanoseconds
                bucket = LatencyHistogram.bucket(nanoseconds: nanoseconds)
            }
        }

        public func record(_ answer: Answer) {
            responses[answer.statusClass].increment()
            latency.record(nanoseconds: answer.nanoseconds, bucket: answer.bucket)
        }

        public func recordFailure() { responses[5].increment() }
    }

    public static let storeLatencyLabel = "ratesync_store_latency_seconds"
    public static let upstreamLatencyLabel = "ratesync_upstream_latency_seconds"
    public static let targetLatencyLabel = "ratesync_upstream_target_latency_seconds"

    /// Set from the loops' own counts when /metrics is scraped.
    public let inFlight = Gauge(label: "ratesync_requests_in_flight")
    /// Set from the waiting room's count when /metrics is scraped.
    public let waiting = Gauge(label: "ratesync_waiting_requests")
    public let reloadSuccesses = Counter(label: "ratesync_config_reloads_total", dimensions: [("result", "success")])
    public let reloadFailures = Counter(label: "ratesync_config_reloads_total", dimensions: [("result", "failure")])

    /// The upstreams' latencies, rendered by /metrics after the registry's metrics.
    let latencyHistograms = LatencyHistograms()

    public init() {}

    public func decisionCounters(route: String, limiter: String) -> DecisionCounters {
        DecisionCounters(
            byOutcome: Outcome.allCases.map { outcome in
                Counter(
                    label: "ratesync_decisions_total",
                    dimensions: [("route", route), ("limiter", limiter), ("outcome", outcome.label)]
                )
            }
        )
    }

    public func upstreamMetrics(_ upstream: String) -> UpstreamMetrics {
        let classes = ["1xx", "2xx", "3xx", "4xx", "5xx", "error"]
        return UpstreamMetrics(
            responses: classes.map {
                Counter(label: "ratesync_upstream_responses_total", dimensions: [("upstream", upstream), ("status_class", $0)])
            },
            latency: latencyHistograms.histogram(name: Self.upstreamLatencyLabel, labels: [("upstream", upstream)])
        )
    }

    /// The same, for one target of an upstream.
    public func targetMetrics(upstream: String, target: String) -> UpstreamMetrics {
        let classes = ["1xx", "2xx", "3xx", "4xx", "5xx", "error"]
        return UpstreamMetrics(
            responses: classes.map {
                Counter(
                    label: "ratesync_upstream_target_responses_total",
                    dimensions: [("upstream", upstream), ("target", target), ("status_class", $0)]
                )
            },
            latency: latencyHistograms.histogram(name: Self.targetLatencyLabel, labels: [("upstream", upstream), ("target", target)])
        )
    }

    public func targetEjections(upstream: String, target: String) -> Counter {
        Counter(label: "ratesync_upstream_ejections_total", dimensions: [("upstream", upstream), ("target", target)])
    }

    /// Refreshed when /metrics is scraped.
    func recordTargetHealth(_ targets: UpstreamTargets) {
        for health in targets.health {
            Gauge(label: "ratesync_upstream_target_healthy", dimensions: [("upstream", health.upstream), ("target", health.target.address)])
                .record(health.inRotation() ? 1 : 0)
        }
    }

    public func denialCacheHits(_ store: String) -> Counter {
        Counter(label: "ratesync_denial_cache_hits_total", dimensions: [("store", store)])
    }

    /// Recorded on every request a store decides over the network: lock-free, as the upstreams'
    /// are (a Prometheus histogram's lock was taken by every event loop, per request).
    public func storeLatency(_ store: String) -> LatencyHistogram {
        latencyHistograms.histogram(name: Self.storeLatencyLabel, labels: [("store", store)])
    }

    /// Refreshed when /metrics is scraped: states that change rarely need no per-request work.
    public func recordStoreState(_ store: any RateLimitStore) {
        let state: Double
        switch store.breakerStateName {
        case "open": state = 2
        case "half_open": state = 1
        default: state = 0
        }
        Gauge(label: "ratesync_store_breaker_state", dimensions: [("store", store.id)]).record(state)
        Gauge(label: "ratesync_store_connections", dimensions: [("store", store.id)]).record(Double(store.openConnections))
    }
}
