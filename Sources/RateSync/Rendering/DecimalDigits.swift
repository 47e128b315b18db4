/// The decimal digits of an integer written straight into memory, with no String between.
public enum DecimalDigits {
    /// The most bytes an integer takes: 19 digits and a sign.
    public static let maximumCount = 20

    /// Writes every digit of `value`, its sign first, at `index` of `out`. Digits are counted,
    /// then written from the last: dividing by the constant 10 compiles to a multiplication.
    /// - Returns: the bytes written.
    public static func write(_ value: Int, into out: UnsafeMutableRawBufferPointer, at index: Int) -> Int {
        var start = index
        if value < 0 {
            precondition(start < out.count, "an integer outgrew the room reserved for it")
            out[start] = UInt8(ascii: "-")
            start += 1
        }
        var magnitude = value.magnitude
        var digits = 1
        var rest = magnitude / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        precondition(start + digits <= out.count, "an integer outgrew the room reserved for it")
        var position = start + digits
        repeat {
            position -= 1
            out[position] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: magnitude % 10)
            magnitude /= 10
        } while magnitude > 0
        return start + digits - index
    }
}
