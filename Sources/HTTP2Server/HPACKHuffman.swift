/// HPACK's Huffman code (RFC 7541, 5.2 and Appendix B), decoded as the canonical code it is.
enum HPACKHuffman {
    struct InvalidCode: Error {
        let reason: String
    }

    /// The end-of-string symbol, which may only pad a string's last byte, never be decoded.
    private static let endOfString = 256
    private static let longestCode = 30
    /// Codes up to this long (the common characters' are 5 to 8 bits) are found in one lookup.
    private static let fastBits = 8

    /// How many codes each length has (index 1 to 30), and the symbols in the order their
    /// codes are assigned: by length, then by symbol.
    private static let canonical: (counts: [Int], symbols: [UInt16]) = {
        let lengths = HPACKTables.huffmanCodeLengths
        var counts = [Int](repeating: 0, count: longestCode + 1)
        for length in lengths { counts[Int(length)] += 1 }
        let symbols = lengths.indices.sorted { (lengths[$0], $0) < (lengths[$1], $1) }.map { UInt16($0) }
        return (counts, symbols)
    }()

    /// For each value of the next 8 bits: the symbol whose code they start with and its
    /// length (`symbol << 4 | length`), or 0 where the code is longer than 8 bits.
    private static let fastTable: [UInt16] = {
        var table = [UInt16](repeating: 0, count: 1 << fastBits)
        var code = 0
        var previousLength = 0
        for symbol in canonical.symbols {
            let length = Int(HPACKTables.huffmanCodeLengths[Int(symbol)])
            if previousLength > 0 { code = (code + 1) << (length - previousLength) }
            previousLength = length
            guard length <= fastBits else { break }
            let first = code << (fastBits - length)
            for next in first..<first + (1 << (fastBits - length)) {
                table[next] = symbol << 4 | UInt16(length)
            }
        }
        return table
    }()

    /// Appends the bytes `encoded` stands for to `out`.
    ///
    /// The next 8 bits name a short code's symbol in one lookup; a longer code is read a bit at
    /// a time, most significant first: after each bit, the code read so far is a whole code of
    /// that length if it falls among the codes of that length, which in a canonical code are
    /// consecutive numbers following those of the lengths before.
    static func decode(_ encoded: UnsafeRawBufferPointer, into out: inout [UInt8]) throws(InvalidCode) {
        let fast = fastTable
        // The bits not yet decoded, right-aligned, and how many there are.
        var bits: UInt64 = 0
        var count = 0
        var next = 0
        while true {
            while count <= 56 && next < encoded.count {
                bits = bits << 8 | UInt64(encoded[next])
                count += 8
                next += 1
            }
            if count >= fastBits {
                let entry = fast[Int(truncatingIfNeeded: bits >> UInt64(count - fastBits)) & 0xFF]
                if entry != 0 {
                    out.append(UInt8(truncatingIfNeeded: entry >> 4))
                    count -= Int(entry & 0xF)
                    continue
                }
            }
            guard let symbol = try longCode(&bits, &count) else { return }
            out.append(symbol)
        }
    }

    /// Reads one code bit by bit from the `count` bits left (all of the string's bits are in
    /// them by the time a string's end is near).
    /// - Returns: its symbol; nil where the bits ran out, which is the string's end if they were
    ///   padding: at most seven bits, the first of the end-of-string code's (all ones).
    private static func longCode(_ bits: inout UInt64, _ count: inout Int) throws(InvalidCode) -> UInt8? {
        let counts = canonical.counts
        var code = 0
        var first = 0
        var index = 0
        var length = 0
        var onlyOnes = true
        while count > 0 {
            count -= 1
            let set = (bits >> UInt64(count)) & 1 == 1
            code |= set ? 1 : 0
            onlyOnes = onlyOnes && set
            length += 1
            let lengthCount = counts[length]
            if code - first < lengthCount {
                let symbol = Int(canonical.symbols[index + code - first])
                guard symbol != endOfString else { throw InvalidCode(reason: "the end-of-string symbol inside a string") }
                return UInt8(truncatingIfNeeded: symbol)
            }
            guard length < longestCode else { throw InvalidCode(reason: "a code longer than any") }
            index += lengthCount
            first = (first + lengthCount) << 1
            code <<= 1
        }
        guard length <= 7, onlyOnes else { throw InvalidCode(reason: "a string padded with other than up to seven 1 bits") }
        return nil
    }
}
