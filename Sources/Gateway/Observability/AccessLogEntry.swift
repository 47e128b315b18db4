import NIOCore
import RateSync

#if canImport(Glibc)
import Glibc
#endif

/// What one request's access-log line says.
struct AccessLogEntry {
    var start: NIOTimestamp
    var client: String
    var method: String
    var path: String
    var route: String?
    var limiter: String?
    var outcome: String?
    var upstream: String?
    var upstreamMilliseconds: Double?
    var status = 0
    /// Shadow limiters that would have denied this request.
    var shadowDenied: [String]?
    /// "local" when the store's in-process fallback decided.
    var decidedBy: String?

    /// The line, as JSON, with its newline, written in one reservation of the buffer (a write
    /// per piece costs several times more than the line's bytes).
    func write(into buffer: inout ByteBuffer, now: NIOTimestamp, clock: inout AccessLogClock) {
        let time = clock.secondsPrefix(of: start)
        // The keys and punctuation take under 200 bytes; the time, three integers and the two
        // durations under 100 more; each text at most six bytes per byte once escaped.
        var room = 320 + time.utf8.count
        room += Self.room(client) + Self.room(method) + Self.room(path)
        room += Self.room(route) + Self.room(limiter) + Self.room(outcome)
        room += Self.room(upstream) + Self.room(decidedBy)
        for limiter in shadowDenied ?? [] { room += Self.room(limiter) + 1 }
        HTTP1Writer.write(into: &buffer, atMost: room) { out in
            out.append("{\"time\":\"")
            time.withUTF8Bytes { out.append($0) }
            AccessLogClock.appendMilliseconds(of: start, into: &out)
            out.append("\",\"client\":")
            out.appendJSON(client)
            out.append(",\"method\":")
            out.appendJSON(method)
            out.append(",\"path\":")
            out.appendJSON(path)
            out.append(",\"status\":")
            out.appendDecimal(status)
            out.append(",\"route\":")
            out.appendJSON(route)
            out.append(",\"limiter\":")
            out.appendJSON(limiter)
            out.append(",\"outcome\":")
            out.appendJSON(outcome)
            if let shadowDenied {
                out.append(",\"shadow_denied\":[")
                for (index, limiter) in shadowDenied.enumerated() {
                    if index > 0 { out.append(UInt8(ascii: ",")) }
                    out.appendJSON(limiter)
                }
                out.append(UInt8(ascii: "]"))
            }
            if let decidedBy {
                out.append(",\"decided_by\":")
                out.appendJSON(decidedBy)
            }
            out.append(",\"upstream\":")
            out.appendJSON(upstream)
            out.append(",\"upstream_ms\":")
            if let upstreamMilliseconds {
                out.appendMilliseconds(Int64(upstreamMilliseconds * 1e6))
            } else {
                out.append("null")
            }
            out.append(",\"duration_ms\":")
            out.appendMilliseconds(now.nanoseconds - start.nanoseconds)
            out.append("}\n")
        }
    }

    /// The most bytes a text (or its `null`) takes in the line.
    private static func room(_ text: String?) -> Int {
        6 * (text?.utf8.count ?? 0) + 4
    }
}

extension OutputCursor {
    /// A JSON string, quoted, escaped only where JSON requires it (at most six bytes per byte);
    /// `null` for nil.
    mutating func appendJSON(_ text: String?) {
        guard let text else {
            append("null")
            return
        }
        let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
        let plain = text.withUTF8Bytes { bytes in
            guard bytes.allSatisfy({ $0 >= 0x20 && $0 != quote && $0 != backslash }) else { return false }
            append(quote)
            append(bytes)
            append(quote)
            return true
        }
        if !plain {
            ErrorBody.jsonString(text).withUTF8Bytes { append($0) }
        }
    }

    /// Every digit of any integer, its sign first.
    mutating func appendDecimal(_ value: Int) {
        advance(by: DecimalDigits.write(value, into: out, at: written))
    }

    /// Nanoseconds as milliseconds with three decimals.
    mutating func appendMilliseconds(_ nanoseconds: Int64) {
        let micros = max(0, (nanoseconds + 500) / 1000)
        appendDecimal(Int(micros / 1000))
        append(UInt8(ascii: "."))
        appendThreeDigits(Int(micros % 1000))
    }
}

/// Formats access-log times, redoing the calendar part only when the second changes.
struct AccessLogClock {
    private var second: Int64 = -1
    /// `2026-11-27T05:10:00.` for `second`.
    private var prefix = ""

    /// `2026-11-27T05:10:00.` for `time`'s second, without Foundation's (slow) date formatting.
    mutating func secondsPrefix(of time: NIOTimestamp) -> String {
        let seconds = time.nanoseconds / 1_000_000_000
        if seconds != second {
            second = seconds
            var calendarSeconds = time_t(seconds)
            var parts = tm()
            gmtime_r(&calendarSeconds, &parts)
            func pad(_ value: Int32, _ width: Int) -> String {
                let digits = String(value)
                return String(repeating: "0", count: max(0, width - digits.count)) + digits
            }
            prefix = "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
                + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
        }
        return prefix
    }

    /// The three digits of milliseconds that follow the prefix, and the `Z`.
    static func appendMilliseconds(of time: NIOTimestamp, into out: inout OutputCursor) {
        out.appendThreeDigits(Int((time.nanoseconds / 1_000_000) % 1000))
        out.append(UInt8(ascii: "Z"))
    }
}
