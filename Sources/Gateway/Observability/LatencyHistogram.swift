import Atomics
import NIOConcurrencyHelpers
import Prometheus

/// A latency histogram recorded on the request path without a lock: one relaxed increment of
/// the bucket the value falls in, and one of the sum. Prometheus's own histogram takes a lock
/// and increments every bucket at or above the value, which on a proxied request cost more than
/// deciding its rate limit. Cumulative counts, `_sum` and `_count` are worked out when /metrics
/// is scraped, in the same text format as the registry's histograms.
public final class LatencyHistogram: Sendable {
    /// Upper bounds, from 100 us to 10 s (the store latency's Prometheus histogram uses them too).
    public static let bounds: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]
    private static let boundNanoseconds: [Int64] = bounds.map { $0.components.seconds * 1_000_000_000 + $0.components.attoseconds / 1_000_000_000 }

    let name: String
    /// `upstream="app",target="10.0.0.5:8080"`, escaped once.
    let renderedLabels: String
    /// Values in (bound[i-1], bound[i]] at i; above the last bound at `bounds.count`.
    private let counts: [ManagedAtomic<Int>]
    private let sumNanoseconds = ManagedAtomic<Int>(0)

    init(name: String, labels: [(String, String)]) {
        self.name = name
        self.renderedLabels = labels.map { "\($0.0)=\"\(Self.escaped($0.1))\"" }.joined(separator: ",")
        self.counts = (0...Self.bounds.count).map { _ in ManagedAtomic<Int>(0) }
    }

    func record(nanoseconds: Int64) {
        let bounds = Self.boundNanoseconds
        var index = 0
        while index < bounds.count && nanoseconds > bounds[index] { index += 1 }
        counts[index].wrappingIncrement(ordering: .relaxed)
        sumNanoseconds.wrappingIncrement(by: Int(max(nanoseconds, 0)), ordering: .relaxed)
    }

    var count: Int { counts.reduce(0) { $0 + $1.load(ordering: .relaxed) } }

    /// The `_bucket`, `_sum` and `_count` lines.
    func emit(into text: inout String) {
        var cumulative = 0
        for (index, bound) in Self.bounds.enumerated() {
            cumulative += counts[index].load(ordering: .relaxed)
            text += "\(name)_bucket{\(renderedLabels),le=\"\(bound.bucketRepresentation)\"} \(cumulative)\n"
        }
        cumulative += counts[Self.bounds.count].load(ordering: .relaxed)
        text += "\(name)_bucket{\(renderedLabels),le=\"+Inf\"} \(cumulative)\n"
        let sum = Duration.nanoseconds(sumNanoseconds.load(ordering: .relaxed))
        text += "\(name)_sum{\(renderedLabels)} \(sum.bucketRepresentation)\n"
        text += "\(name)_count{\(renderedLabels)} \(cumulative)\n"
    }

    /// The text format's escapes for a label value: backslash, double quote and line feed.
    static func escaped(_ value: String) -> String {
        var escaped = ""
        for character in value.unicodeScalars {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.unicodeScalars.append(character)
            }
        }
        return escaped
    }
}

/// Every latency histogram of the process, by name and labels: a configuration reloaded gets
/// the histograms the one before it recorded into, as swift-metrics' registry does for the rest.
final class LatencyHistograms: Sendable {
    private struct Family {
        var histograms: [String: LatencyHistogram] = [:]
        var order: [String] = []
    }

    private let families = NIOLockedValueBox<[(name: String, family: Family)]>([])

    func histogram(name: String, labels: [(String, String)]) -> LatencyHistogram {
        let made = LatencyHistogram(name: name, labels: labels)
        return families.withLockedValue { families in
            let index = families.firstIndex { $0.name == name } ?? {
                families.append((name, Family()))
                return families.count - 1
            }()
            if let existing = families[index].family.histograms[made.renderedLabels] { return existing }
            families[index].family.histograms[made.renderedLabels] = made
            families[index].family.order.append(made.renderedLabels)
            return made
        }
    }

    /// Each family's `# TYPE` line and its histograms, in the order they were made.
    func emit(into text: inout String) {
        let families = families.withLockedValue { $0 }
        for (name, family) in families {
            text += "# TYPE \(name) histogram\n"
            for labels in family.order { family.histograms[labels]?.emit(into: &text) }
        }
    }
}
