import NIOConcurrencyHelpers

/// Every series the gateway counts per loop (the request path's counters and latency
/// histograms), each given its places in the loops' counts once for the process: the same name
/// and labels get the same places again, so a reloaded configuration counts on where the one
/// before it left off. Rendered when /metrics is scraped from the loops' counts summed, in
/// Prometheus's text format, families in the order they were made, each under one TYPE line.
final class MetricSeries: Sendable {
    private enum Kind: String {
        case counter, histogram
    }

    private struct Family {
        let name: String
        let kind: Kind
        /// Labels rendered (`upstream="app",target="10.0.0.5:8080"`), and the first place.
        var series: [(labels: String, first: Int)]
    }

    private struct State {
        var families: [Family] = []
        var places = 0
    }

    private let state = NIOLockedValueBox(State())

    init() {}

    func counter(name: String, labels: [(String, String)]) -> LoopCounter {
        LoopCounter(place: place(name: name, kind: .counter, labels: labels, width: 1))
    }

    func histogram(name: String, labels: [(String, String)]) -> LatencyHistogram {
        LatencyHistogram(first: place(name: name, kind: .histogram, labels: labels, width: LatencyHistogram.width))
    }

    /// The first of `width` places of a series, taken now or found again.
    private func place(name: String, kind: Kind, labels: [(String, String)], width: Int) -> Int {
        let rendered = Self.render(labels)
        return state.withLockedValue { state in
            let family: Int
            if let known = state.families.firstIndex(where: { $0.name == name }) {
                precondition(state.families[known].kind == kind, "\(name) is already a \(state.families[known].kind)")
                if let existing = state.families[known].series.first(where: { $0.labels == rendered }) { return existing.first }
                family = known
            } else {
                state.families.append(Family(name: name, kind: kind, series: []))
                family = state.families.count - 1
            }
            let first = state.places
            state.places += width
            state.families[family].series.append((rendered, first))
            return first
        }
    }

    /// Every family's TYPE line and series.
    /// - Parameter totals: the loops' counts summed (`LoopCounts.sum`).
    func emit(totals: [Int], into text: inout String) {
        for family in state.withLockedValue({ $0.families }) {
            text += "# TYPE \(family.name) \(family.kind.rawValue)\n"
            for (labels, first) in family.series {
                switch family.kind {
                case .counter:
                    text += "\(family.name){\(labels)} \(LoopCounts.total(at: first, in: totals))\n"
                case .histogram:
                    LatencyHistogram(first: first).emit(name: family.name, labels: labels, totals: totals, into: &text)
                }
            }
        }
    }

    /// `name="value"` pairs joined by commas, values escaped.
    static func render(_ labels: [(String, String)]) -> String {
        labels.map { "\($0.0)=\"\(escaped($0.1))\"" }.joined(separator: ",")
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
