/// Searches over the bytes of a head eight at a time, as one 64-bit word each: most of a head
/// is field values and line ends to find, and a byte-at-a-time loop spent most of a request's
/// parsing there. A word that holds a byte sought is then searched byte by byte.
enum ByteScan {
    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highBits: UInt64 = 0x8080_8080_8080_8080

    /// Whether some byte of `word` is zero (exact: a borrow only runs past the first zero).
    @inline(__always)
    private static func hasZeroByte(_ word: UInt64) -> Bool {
        (word &- ones) & ~word & highBits != 0
    }

    /// Whether some byte of `word` is below `bound` (at most 0x80; bytes from 0x80 up never are).
    @inline(__always)
    private static func hasByteBelow(_ bound: UInt8, _ word: UInt64) -> Bool {
        (word &- ones &* UInt64(bound)) & ~word & highBits != 0
    }

    /// The index of the first byte at or after `start` that is a control byte (below 0x20) or
    /// DEL, or `bytes.count` when there is none. Bytes from 0x80 up (obs-text) are not.
    @inline(__always)
    static func firstControlByte(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        var index = start
        if let base = bytes.baseAddress {
            while index + 8 <= bytes.count {
                let word = base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                if hasByteBelow(0x20, word) || hasZeroByte(word ^ (ones &* 0x7F)) { break }
                index += 8
            }
        }
        while index < bytes.count, bytes[index] >= 0x20, bytes[index] != 0x7F { index += 1 }
        return index
    }

    /// The index of the first `byte` at or after `start` and before `end`, or `end`.
    @inline(__always)
    static func first(_ byte: UInt8, in bytes: UnsafeRawBufferPointer, from start: Int, before end: Int) -> Int {
        var index = start
        if let base = bytes.baseAddress {
            let pattern = ones &* UInt64(byte)
            while index + 8 <= end {
                if hasZeroByte(base.loadUnaligned(fromByteOffset: index, as: UInt64.self) ^ pattern) { break }
                index += 8
            }
        }
        while index < end, bytes[index] != byte { index += 1 }
        return index
    }
}
