/// HPACK's Huffman code (RFC 7541, 5.2 and Appendix B), decoded as the canonical code it is.
enum HPACKHuffman {
    struct InvalidCode: Error {
        let reason: String
    }

    /// The end-of-string symbol, which may only pad a string's last byte, never be decoded.
    private static let endOfString = 256
    private static let longestCode = 30

    /// How many codes each length has (index 1 to 30), and the symbols in the order their
    /// codes are assigned: by length, then by symbol.
    private static let canonical: (counts: [Int], symbols: [UInt16]) = {
        let lengths = HPACKTables.huffmanCodeLengths
        var counts = [Int](repeating: 0, count: longestCode + 1)
        for length in lengths { counts[Int(length)] += 1 }
        let symbols = lengths.indices.sorted { (lengths[$0], $0) < (lengths[$1], $1) }.map { UInt16($0) }
        return (counts, symbols)
    }()

    /// Appends the bytes `encoded` stands for to `out`.
    ///
    /// Codes are read a bit at a time, most significant first: after each bit, the code read so
    /// far is a whole code of that length if it falls among the codes of that length, which in
    /// a canonical code are consecutive numbers following those of the lengths before.
    static func decode(_ encoded: UnsafeRawBufferPointer, into out: inout [UInt8]) throws(InvalidCode) {
        let counts = canonical.counts
        let symbols = canonical.symbols
        var code = 0
        var first = 0
        var index = 0
        var length = 0
        var onlyOnes = true
        for byte in encoded {
            var bit = 7
            while bit >= 0 {
                let set = (byte >> UInt8(bit)) & 1 == 1
                code |= set ? 1 : 0
                onlyOnes = onlyOnes && set
                length += 1
                let count = counts[length]
                if code - first < count {
                    let symbol = Int(symbols[index + code - first])
                    guard symbol != endOfString else { throw InvalidCode(reason: "the end-of-string symbol inside a string") }
                    out.append(UInt8(truncatingIfNeeded: symbol))
                    code = 0
                    first = 0
                    index = 0
                    length = 0
                    onlyOnes = true
                } else {
                    guard length < longestCode else { throw InvalidCode(reason: "a code longer than any") }
                    index += count
                    first = (first + count) << 1
                    code <<= 1
                }
                bit -= 1
            }
        }
        // What is left of the last byte must be padding: at most seven bits, the first of the
        // end-of-string code's (all ones).
        guard length <= 7, onlyOnes else { throw InvalidCode(reason: "a string padded with other than up to seven 1 bits") }
    }
}
