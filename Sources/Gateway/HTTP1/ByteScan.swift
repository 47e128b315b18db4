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
        firstStop(in: bytes, from: start) { word in
            hasByteBelow(0x20, word) || hasZeroByte(word ^ (ones &* 0x7F))
        } isStop: { byte in
            byte < 0x20 || byte == 0x7F
        }
    }

    /// The index of the first byte at or after `start` that is not visible ASCII (0x21 to 0x7E:
    /// a space, a control byte, DEL or a byte from 0x80 up), or `bytes.count`.
    @inline(__always)
    static func firstNonVisible(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        firstStop(in: bytes, from: start) { word in
            hasByteBelow(0x21, word) || word & highBits != 0 || hasZeroByte(word ^ (ones &* 0x7F))
        } isStop: { byte in
            !(0x21...0x7E).contains(byte)
        }
    }

    /// The first stop at or after `start`, or `bytes.count`: whole words skipped while
    /// `wordHasStop` says none of their bytes is one, then byte by byte. Loaded through the base
    /// address taken once (the buffer's subscript checks it for nil on every byte).
    @inline(__always)
    private static func firstStop(
        in bytes: UnsafeRawBufferPointer,
        from start: Int,
        wordHasStop: (UInt64) -> Bool,
        isStop: (UInt8) -> Bool
    ) -> Int {
        guard let base = bytes.baseAddress else { return start }
        let end = bytes.count
        var index = start
        while index + 8 <= end, !wordHasStop(base.loadUnaligned(fromByteOffset: index, as: UInt64.self)) { index += 8 }
        while index < end, !isStop(base.load(fromByteOffset: index, as: UInt8.self)) { index += 1 }
        return index
    }

    /// The index of the first byte at or after `start` that is not in `set`, or `bytes.count`:
    /// byte by byte (no word test says whether a set holds all eight).
    @inline(__always)
    static func firstNonMember(of set: ASCIIByteSet, in bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        firstStop(in: bytes, from: start) { _ in true } isStop: { !set.contains($0) }
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
