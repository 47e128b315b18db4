/// The rate-limit response headers of one decision: the classic `X-RateLimit-*` trio,
/// `Retry-After` on denials, and the IETF httpapi draft's structured `RateLimit-Policy` and
/// `RateLimit` fields (`"<policy>";q=<quota>;w=<window>` and `"<policy>";r=<remaining>;t=<reset>`).
///
/// Kept as numbers until written: a proxied response writes them straight into its head
/// (`forEachField`), and only the gateway's own answers, built as general heads, make Strings
/// of them (`pairs`).
public struct RateLimitHeaders: Sendable {
    public let policy: String
    public let limit: Int
    public let remaining: Int
    /// Unix seconds at which the budget is full again.
    public let resetAt: Int
    /// Seconds until then.
    public let resetSeconds: Int
    public let windowSeconds: Int
    /// On denials only.
    public let retryAfterSeconds: Int?

    public init(_ decision: Decision, limiter: LimiterConfig) {
        policy = limiter.id
        limit = decision.limit
        remaining = decision.remaining
        resetAt = Int((decision.now + decision.resetAfter).rounded(.up))
        resetSeconds = max(0, Int(decision.resetAfter.rounded(.up)))
        windowSeconds = Self.policyWindowSeconds(limiter)
        retryAfterSeconds = decision.allowed ? nil : Self.retryAfterSeconds(decision)
    }

    /// The names of an admission's headers, in the order they are written (a denial's add
    /// `Retry-After`).
    public static let admissionNames: [StaticString] = [
        "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "RateLimit-Policy", "RateLimit",
    ]

    /// The most bytes the names and values `forEachField` hands over add up to.
    public var maximumByteCount: Int {
        // The names take 91 bytes; four values are one integer each, two are structured items.
        100 + 4 * DecimalDigits.maximumCount + 2 * ValueWriter.itemCapacity(policy: policy.utf8.count)
    }

    /// Each header in order, its name and value as bytes; the values are formatted in a scratch
    /// buffer on the stack, valid only during each call.
    public func forEachField(_ body: (_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Void) {
        // The numbers as locals: the writers below then capture integers, not a copy of this
        // value (and a retain of its policy) each.
        let (limit, remaining, resetAt, resetSeconds, windowSeconds) = (limit, remaining, resetAt, resetSeconds, windowSeconds)
        let retryAfterSeconds = self.retryAfterSeconds
        var policy = self.policy
        policy.withUTF8 { policy in
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: ValueWriter.itemCapacity(policy: policy.count)) { scratch in
                func emit(_ name: StaticString, _ write: (inout ValueWriter) -> Void) {
                    var writer = ValueWriter(out: scratch)
                    write(&writer)
                    name.withUTF8Buffer { name in
                        body(UnsafeRawBufferPointer(name), UnsafeRawBufferPointer(start: scratch.baseAddress, count: writer.count))
                    }
                }
                emit(Self.admissionNames[0]) { $0.append(limit) }
                emit(Self.admissionNames[1]) { $0.append(remaining) }
                emit(Self.admissionNames[2]) { $0.append(resetAt) }
                emit(Self.admissionNames[3]) { $0.appendItem(policy, UInt8(ascii: "q"), limit, UInt8(ascii: "w"), windowSeconds) }
                emit(Self.admissionNames[4]) { $0.appendItem(policy, UInt8(ascii: "r"), remaining, UInt8(ascii: "t"), resetSeconds) }
                if let retryAfterSeconds {
                    emit("Retry-After") { $0.append(retryAfterSeconds) }
                }
            }
        }
    }

    /// The headers as HTTP/1.1 field lines (`Name: value` and CRLF each), in `forEachField`'s
    /// order, written straight into `out` from `index`, which must have room for
    /// `maximumByteCount` and four bytes per field: no scratch value, no call per field.
    /// - Returns: the bytes written.
    public func writeFieldLines(into out: UnsafeMutableRawBufferPointer, at index: Int) -> Int {
        precondition(index + maximumByteCount + 4 * 6 <= out.count, "no room for the rate-limit headers")
        var policy = self.policy
        return policy.withUTF8 { policy in
            var lines = LineWriter(out: out, index: index)
            lines.append("X-RateLimit-Limit: ")
            // The limit and the remaining budget appear twice each: formatted once, then copied.
            let limitDigits = lines.append(limit)
            lines.append("\r\nX-RateLimit-Remaining: ")
            let remainingDigits = lines.append(remaining)
            lines.append("\r\nX-RateLimit-Reset: ")
            lines.append(resetAt)
            lines.append("\r\nRateLimit-Policy: \"")
            lines.append(policy)
            lines.append("\";q=")
            lines.appendCopy(of: limitDigits)
            lines.append(";w=")
            lines.append(windowSeconds)
            lines.append("\r\nRateLimit: \"")
            lines.append(policy)
            lines.append("\";r=")
            lines.appendCopy(of: remainingDigits)
            lines.append(";t=")
            lines.append(resetSeconds)
            lines.append("\r\n")
            if let retryAfterSeconds {
                lines.append("Retry-After: ")
                lines.append(retryAfterSeconds)
                lines.append("\r\n")
            }
            return lines.index - index
        }
    }

    /// The headers as Strings, for an answer built as a general head.
    public var pairs: [(String, String)] {
        var pairs: [(String, String)] = []
        pairs.reserveCapacity(6)
        forEachField { name, value in
            pairs.append((String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self)))
        }
        return pairs
    }

    /// Whole seconds a client should wait; at least 1 so that "retry now" is never announced.
    public static func retryAfterSeconds(_ decision: Decision) -> Int {
        max(1, Int(decision.retryAfter.rounded(.up)))
    }

    /// The policy's window: the sliding window itself, or the time a token bucket takes to
    /// refill completely (`burst / rate`), in whole seconds, at least 1.
    static func policyWindowSeconds(_ limiter: LimiterConfig) -> Int {
        let seconds: Double
        switch limiter.algorithm {
        case .slidingWindow(let rule): seconds = rule.windowSeconds
        case .tokenBucket(let rule?): seconds = Double(rule.burst) / rule.ratePerSecond
        case .tokenBucket(nil): seconds = 1
        }
        return max(1, Int(seconds.rounded(.up)))
    }
}

/// Bytes of one header value written into a scratch buffer large enough for it.
private struct ValueWriter {
    let out: UnsafeMutableBufferPointer<UInt8>
    var count = 0

    mutating func append(_ byte: UInt8) {
        out[count] = byte
        count += 1
    }

    /// The most bytes a structured item takes: the quoted policy, two keys with their `;` and
    /// `=`, and two integers.
    static func itemCapacity(policy: Int) -> Int {
        policy + 2 + 2 * (3 + DecimalDigits.maximumCount)
    }

    /// `"<policy>";<key>=<value>;<key>=<value>`.
    mutating func appendItem(_ policy: UnsafeBufferPointer<UInt8>, _ firstKey: UInt8, _ first: Int, _ secondKey: UInt8, _ second: Int) {
        append(UInt8(ascii: "\""))
        for byte in policy { append(byte) }
        append(UInt8(ascii: "\""))
        append(UInt8(ascii: ";"))
        append(firstKey)
        append(UInt8(ascii: "="))
        append(first)
        append(UInt8(ascii: ";"))
        append(secondKey)
        append(UInt8(ascii: "="))
        append(second)
    }

    /// Every digit of any integer, its sign first.
    mutating func append(_ value: Int) {
        count += DecimalDigits.write(value, into: UnsafeMutableRawBufferPointer(out), at: count)
    }
}

/// Bytes appended into room already checked (`writeFieldLines`).
private struct LineWriter {
    let out: UnsafeMutableRawBufferPointer
    var index: Int

    @inline(__always)
    mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { append($0) }
    }

    @inline(__always)
    mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let base = bytes.baseAddress else { return }
        (out.baseAddress! + index).copyMemory(from: base, byteCount: bytes.count)
        index += bytes.count
    }

    /// Every digit of `value`, its sign first.
    /// - Returns: where they were written, for `appendCopy(of:)`.
    @inline(__always)
    @discardableResult
    mutating func append(_ value: Int) -> Range<Int> {
        let start = index
        index += DecimalDigits.write(value, into: out, at: index)
        return start..<index
    }

    /// Bytes already written at `range`, again.
    @inline(__always)
    mutating func appendCopy(of range: Range<Int>) {
        let base = out.baseAddress!
        (base + index).copyMemory(from: base + range.lowerBound, byteCount: range.count)
        index += range.count
    }
}
