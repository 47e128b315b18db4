/// The decimal digits of an integer written straight into memory, with no String between.
public enum DecimalDigits {
    /// The most bytes an integer takes: 19 digits and a sign.
    public static let maximumCount = 20

    /// "00", "01", ... "99": two digits per division by 100.
    private static let pairs: StaticString = """
        00010203040506070809101112131415161718192021222324252627282930313233343536373839\
        40414243444546474849505152535455565758596061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899
        """

    /// Writes every digit of `value`, its sign first, at `index` of `out`. Digits are counted,
    /// then written from the last, two at a time (dividing by a constant compiles to a
    /// multiplication).
    /// - Returns: the bytes written.
    public static func write(_ value: Int, into out: UnsafeMutableRawBufferPointer, at index: Int) -> Int {
        var start = index
        if value < 0 {
            precondition(start < out.count, "an integer outgrew the room reserved for it")
            out[start] = UInt8(ascii: "-")
            start += 1
        }
        var magnitude = value.magnitude
        let digits = count(magnitude)
        precondition(start + digits <= out.count, "an integer outgrew the room reserved for it")
        var position = start + digits
        pairs.withUTF8Buffer { pairs in
            while magnitude >= 100 {
                let pair = Int(magnitude % 100) &* 2
                magnitude /= 100
                position -= 2
                out[position] = pairs[pair]
                out[position + 1] = pairs[pair + 1]
            }
            if magnitude >= 10 {
                let pair = Int(magnitude) &* 2
                out[position - 2] = pairs[pair]
                out[position - 1] = pairs[pair + 1]
            } else {
                out[position - 1] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: magnitude)
            }
        }
        return start + digits - index
    }

    /// How many decimal digits `value` has (1 for zero).
    static func count(_ value: UInt) -> Int {
        var rest = value
        var digits = 1
        while rest >= 10_000 {
            rest /= 10_000
            digits += 4
        }
        if rest >= 100 {
            rest /= 100
            digits += 2
        }
        if rest >= 10 { digits += 1 }
        return digits
    }
}
