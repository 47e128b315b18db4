@testable import Gateway
import Foundation
import NIOCore
import XCTest

/// The access log's JSON line, byte for byte.
final class AccessLogEntryTests: XCTestCase {
    /// 2026-11-27T05:10:00.042Z
    private let start = NIOTimestamp(nanoseconds: 1_795_756_200_042_000_000)

    private func line(_ entry: AccessLogEntry, after nanoseconds: Int64, clock: inout AccessLogClock) -> String {
        var buffer = ByteBuffer()
        entry.write(into: &buffer, now: NIOTimestamp(nanoseconds: entry.start.nanoseconds + nanoseconds), clock: &clock)
        return String(buffer: buffer)
    }

    func testAProxiedRequestsLine() {
        var entry = AccessLogEntry(start: start, client: "203.0.113.7", method: "GET", path: "/products?page=2")
        entry.route = "public"
        entry.limiter = "api"
        entry.outcome = "allowed"
        entry.upstream = "app"
        entry.upstreamMilliseconds = 1.2345
        entry.status = 200
        var clock = AccessLogClock()
        XCTAssertEqual(
            line(entry, after: 2_500_400, clock: &clock),
            #"{"time":"2026-11-27T05:10:00.042Z","client":"203.0.113.7","method":"GET","path":"/products?page=2","status":200,"route":"public","limiter":"api","outcome":"allowed","upstream":"app","upstream_ms":1.235,"duration_ms":2.500}"#
                + "\n"
        )
    }

    func testALocalAnswerWithShadowsEscapesAndNulls() {
        var entry = AccessLogEntry(start: start, client: "::1", method: "POST", path: "/a\"b\\c\u{1}")
        entry.status = 429
        entry.limiter = "login"
        entry.outcome = "limited"
        entry.shadowDenied = ["next", "wide"]
        entry.decidedBy = "local"
        var clock = AccessLogClock()
        XCTAssertEqual(
            line(entry, after: 999, clock: &clock),
            #"{"time":"2026-11-27T05:10:00.042Z","client":"::1","method":"POST","path":"/a\"b\\c\u0001","status":429,"route":null,"limiter":"login","outcome":"limited","shadow_denied":["next","wide"],"decided_by":"local","upstream":null,"upstream_ms":null,"duration_ms":0.001}"#
                + "\n"
        )
    }

    func testTheTimeFollowsTheSecondsAndLongTextsFit() throws {
        var clock = AccessLogClock()
        var entry = AccessLogEntry(start: start, client: "c", method: "GET", path: "/")
        _ = line(entry, after: 0, clock: &clock)
        entry.start = NIOTimestamp(nanoseconds: start.nanoseconds + 3_600_958_000_000)
        entry.path = "/" + String(repeating: "\"", count: 10_000)
        let written = line(entry, after: 1_000_000_000_000, clock: &clock)
        XCTAssertTrue(written.hasPrefix(#"{"time":"2026-11-27T06:10:01.000Z""#), written.prefix(60).description)
        XCTAssertTrue(written.hasSuffix(#""duration_ms":1000000.000}"# + "\n"))
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(written.utf8)) as? [String: Any])
        XCTAssertEqual(object["path"] as? String, entry.path)
    }
}
