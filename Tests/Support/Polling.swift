import Foundation

/// Polls `condition` every 50 ms until it holds, and returns how long that took; throws naming
/// `what` once `timeout` has passed.
@discardableResult
public func waitUntil(_ what: String, timeout: TimeInterval, _ condition: () throws -> Bool) throws -> TimeInterval {
    let started = Date()
    while Date().timeIntervalSince(started) < timeout {
        if (try? condition()) == true { return Date().timeIntervalSince(started) }
        usleep(50_000)
    }
    throw HarnessError("timed out after \(timeout) s waiting until \(what)")
}

/// What wrk printed: requests sent, and how many got an answer other than 2xx or 3xx.
public struct WrkSummary {
    public let requests: Int
    public let non2xx: Int

    public init(output: String) {
        let lines = output.split(separator: "\n")
        requests = Int(lines.first { $0.contains("requests in") }?.split(separator: " ").first ?? "0") ?? 0
        non2xx = Int(lines.first { $0.contains("Non-2xx") }?.split(separator: " ").last ?? "0") ?? 0
    }
}
