import Metrics
import RateSync

/// Every metric the gateway keeps, created once per configuration so that the request path only
/// counts at places it already holds (no label lookups per request). Labels name routes,
/// limiters, stores and upstreams: never a client or an identifier.
///
/// What a request records (decisions, upstream answers and latencies, store latencies, denial
/// cache hits) is counted per event loop (`MetricSeries`, `LoopCounts`) and summed when /metrics
/// is scraped; the rest (reloads, ejections, gauges set at scrape time) lives in swift-metrics'
/// registry.
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
    struct DecisionCounters: Sendable {
        let byOutcome: [LoopCounter]
        func record(_ outcome: Outcome, in counts: LoopCounts) { byOutcome[outcome.rawValue].increment(in: counts) }
    }

    /// The response counters and latency histogram of one upstream.
    struct UpstreamMetrics: Sendable {
        /// 1xx..5xx at 0...4; connection errors and timeouts at 5.
        let responses: [LoopCounter]
        let latency: LatencyHistogram

        /// An upstream's answer, placed once for every UpstreamMetrics it is recorded in (the
        /// upstream's and its target's).
        struct Answer {
            /// 1xx..5xx at 0...4; anything else at 5.
            let statusClass: Int
            let nanoseconds: Int64
            let bucket: Int

            init(statusCode: Int, nanoseconds: Int64) {
                statusClass = (100...599).contains(statusCode) ? statusCode / 100 - 1 : 5
                self.nanoseconds = nanoseconds
                bucket = LatencyHistogram.bucket(nanoseconds: nanoseconds)
            }
        }

        func record(_ answer: Answer, in counts: LoopCounts) {
            responses[answer.statusClass].increment(in: counts)
            latency.record(nanoseconds: answer.nanoseconds, bucket: answer.bucket, in: counts)
        }

        func recordFailure(in counts: LoopCounts) { responses[5].increment(in: counts) }
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

    /// The series counted per loop, rendered by /metrics after the registry's metrics.
    let loopSeries = MetricSeries()

    public init() {}

    func decisionCounters(route: String, limiter: String) -> DecisionCounters {
        DecisionCounters(
            byOutcome: Outcome.allCases.map { outcome in
                loopSeries.counter(
                    name: "ratesync_decisions_total",
                    labels: [("route", route), ("limiter", limiter), ("outcome", outcome.label)]
                )
            }
        )
    }

    private static let statusClasses = ["1xx", "2xx", "3xx", "4xx", "5xx", "error"]

    func upstreamMetrics(_ upstream: String) -> UpstreamMetrics {
        UpstreamMetrics(
            responses: Self.statusClasses.map {
                loopSeries.counter(name: "ratesync_upstream_responses_total", labels: [("upstream", upstream), ("status_class", $0)])
            },
            latency: loopSeries.histogram(name: Self.upstreamLatencyLabel, labels: [("upstream", upstream)])
        )
    }

    /// The same, for one target of an upstream.
    func targetMetrics(upstream: String, target: String) -> UpstreamMetrics {
        UpstreamMetrics(
            responses: Self.statusClasses.map {
                loopSeries.counter(
                    name: "ratesync_upstream_target_responses_total",
                    labels: [("upstream", upstream), ("target", target), ("status_class", $0)]
                )
            },
            latency: loopSeries.histogram(name: Self.targetLatencyLabel, labels: [("upstream", upstream), ("target", target)])
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

    func denialCacheHits(_ store: String) -> LoopCounter {
        loopSeries.counter(name: "ratesync_denial_cache_hits_total", labels: [("store", store)])
    }

    /// Recorded on every request a store decides over the network.
    func storeLatency(_ store: String) -> LatencyHistogram {
        loopSeries.histogram(name: Self.storeLatencyLabel, labels: [("store", store)])
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
