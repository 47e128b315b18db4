import HTTPFieldText
import NIOCore
import NIOHPACK

/// Decodes a client's header blocks (RFC 7541) keeping the bytes it sent.
///
/// HPACK carries octets, and a field value may hold obs-text (bytes 0x80 to 0xFF that are not
/// UTF-8). swift-nio-http2's decoder makes each value a String by decoding it as UTF-8, which
/// replaces such bytes with U+FFFD: the upstream would get a value the client never sent. Here
/// names and values become FieldText Strings, which the writers turn back into the bytes
/// received, as they do for HTTP/1.1's fields.
///
/// One per connection: the dynamic table carries from block to block.
package struct HPACKFieldDecoder {
    package struct DecodingError: Error, CustomStringConvertible {
        package let description: String
    }

    /// A dynamic table entry, its Strings made once, however often it is named.
    private struct Entry {
        let name: String
        let value: String
        /// The name's bytes as sent (a literal naming this entry's name counts them).
        let nameSize: Int
        /// What it counts for in the table and in a list's size: 32 plus its bytes as sent.
        let size: Int
    }

    /// Oldest first: HPACK's index 62 is the newest, at the end. (An array: entries are named
    /// far more often than the oldest is evicted.)
    private var table: [Entry] = []
    private var tableSize = 0
    private var maxTableSize: Int
    /// The table size this side allows (SETTINGS_HEADER_TABLE_SIZE, which it leaves at its
    /// default): no size update may ask for more.
    private let allowedTableSize: Int
    private let maxListSize: Int
    /// Where a Huffman-coded string is decoded, kept from string to string.
    private var scratch: [UInt8] = []

    /// - Parameters:
    ///   - allowedTableSize: SETTINGS_HEADER_TABLE_SIZE as this side announced it.
    ///   - maxListSize: decoding stops, with an error, once a block's fields (each counted as
    ///     RFC 7541's 32 bytes plus its name and value) pass it.
    package init(allowedTableSize: Int = 4096, maxListSize: Int) {
        self.allowedTableSize = allowedTableSize
        self.maxTableSize = allowedTableSize
        self.maxListSize = maxListSize
    }

    package mutating func decode(_ block: ByteBuffer) throws(DecodingError) -> HPACKHeaders {
        var fields = HPACKHeaders()
        // Room for a typical request's fields at once, instead of growing four times.
        fields.reserveCapacity(16)
        try block.withUnsafeReadableBytes { bytes throws(DecodingError) in
            var cursor = Cursor(bytes: bytes)
            var listSize = 0
            while !cursor.atEnd {
                let first = try cursor.byte()
                let field: Entry
                if first & 0x80 != 0 {
                    field = try entry(at: cursor.integer(first, prefixBits: 7))
                } else if first & 0x40 != 0 {
                    field = try literal(first, prefixBits: 6, &cursor)
                    insert(field)
                } else if first & 0x20 != 0 {
                    // Only before the block's first field (RFC 7541, 4.2).
                    guard fields.isEmpty else { throw DecodingError(description: "a table size update after a field") }
                    let size = try cursor.integer(first, prefixBits: 5)
                    guard size <= allowedTableSize else {
                        throw DecodingError(description: "a table size update to \(size), over \(allowedTableSize)")
                    }
                    maxTableSize = size
                    evict(toFit: 0)
                    continue
                } else {
                    // Without indexing (0000) or never indexed (0001): not added to the table.
                    field = try literal(first, prefixBits: 4, &cursor)
                }
                listSize += field.size
                guard listSize <= maxListSize else {
                    throw DecodingError(description: "a header list of over \(maxListSize) bytes")
                }
                fields.add(name: field.name, value: field.value)
            }
        }
        return fields
    }

    /// A field written as a literal: its name by index or as a string, then its value.
    private mutating func literal(_ first: UInt8, prefixBits: Int, _ cursor: inout Cursor) throws(DecodingError) -> Entry {
        let nameIndex = try cursor.integer(first, prefixBits: prefixBits)
        let name: String
        let nameSize: Int
        if nameIndex == 0 {
            (name, nameSize) = try string(&cursor, Self.fieldName)
        } else {
            let named = try entry(at: nameIndex)
            name = named.name
            nameSize = named.nameSize
        }
        let (value, valueSize) = try string(&cursor, FieldText.string)
        return Entry(name: name, value: value, nameSize: nameSize, size: 32 + nameSize + valueSize)
    }

    /// The entry at an index: 1 to 61 the static table's, then the dynamic table's, newest first.
    private func entry(at index: Int) throws(DecodingError) -> Entry {
        if index >= 1 && index <= staticEntries.count { return staticEntries[index - 1] }
        let position = index - staticEntries.count - 1
        guard index >= 1, position < table.count else { throw DecodingError(description: "index \(index) names no entry") }
        return table[table.count - 1 - position]
    }

    /// The static table as entries, shared (held by each decoder so that naming one costs no
    /// check that the global is made).
    private let staticEntries = HPACKFieldDecoder.sharedStaticEntries
    private static let sharedStaticEntries = HPACKTables.staticTable.map { field in
        Entry(name: field.name, value: field.value, nameSize: field.name.utf8.count, size: 32 + field.name.utf8.count + field.value.utf8.count)
    }

    /// A string literal (RFC 7541, 5.2), plain or Huffman-coded, made a String by `text`, and
    /// its length in bytes.
    private mutating func string(
        _ cursor: inout Cursor,
        _ text: (UnsafeRawBufferPointer) -> String
    ) throws(DecodingError) -> (String, Int) {
        let first = try cursor.byte()
        let length = try cursor.integer(first, prefixBits: 7)
        let encoded = try cursor.bytes(length)
        guard first & 0x80 != 0 else { return (text(encoded), encoded.count) }
        scratch.removeAll(keepingCapacity: true)
        do {
            try HPACKHuffman.decode(encoded, into: &scratch)
        } catch {
            throw DecodingError(description: error.reason)
        }
        return (scratch.withUnsafeBytes { text($0) }, scratch.count)
    }

    /// A field name as a String, which must be ASCII (HPACKHeaders requires it). A name is a
    /// token (RFC 9110, 5.6.2), and HTTP2Request refuses one that is not: a byte above 0x7F
    /// becomes `?`, which no token holds, so that the refusal is its stream's alone and the
    /// table stays in step for the blocks after it.
    private static func fieldName(_ bytes: UnsafeRawBufferPointer) -> String {
        guard bytes.contains(where: { $0 >= 0x80 }) else { return String(decoding: bytes, as: UTF8.self) }
        return String(decoding: bytes.map { $0 >= 0x80 ? UInt8(ascii: "?") : $0 }, as: UTF8.self)
    }

    /// Adds an entry as the newest, evicting the oldest to make room; one larger than the
    /// whole table empties it and is not added (RFC 7541, 4.4).
    private mutating func insert(_ entry: Entry) {
        evict(toFit: entry.size)
        guard entry.size <= maxTableSize else { return }
        table.append(entry)
        tableSize += entry.size
    }

    private mutating func evict(toFit size: Int) {
        var evicted = 0
        while tableSize + size > maxTableSize, evicted < table.count {
            tableSize -= table[evicted].size
            evicted += 1
        }
        table.removeFirst(evicted)
    }
}

/// Reads a block's bytes in order.
private struct Cursor {
    let bytes: UnsafeRawBufferPointer
    var index = 0

    var atEnd: Bool { index >= bytes.count }

    mutating func byte() throws(HPACKFieldDecoder.DecodingError) -> UInt8 {
        guard index < bytes.count else { throw .init(description: "a block that ends inside a field") }
        defer { index += 1 }
        return bytes[index]
    }

    mutating func bytes(_ count: Int) throws(HPACKFieldDecoder.DecodingError) -> UnsafeRawBufferPointer {
        guard count <= bytes.count - index else { throw .init(description: "a string longer than its block") }
        defer { index += count }
        return UnsafeRawBufferPointer(rebasing: bytes[index..<index + count])
    }

    /// An integer (RFC 7541, 5.1) whose first bits are the low `prefixBits` of `first`. None a
    /// block can use is near 2^28: more continuation bytes than that needs are an error.
    mutating func integer(_ first: UInt8, prefixBits: Int) throws(HPACKFieldDecoder.DecodingError) -> Int {
        let limit = (1 << prefixBits) - 1
        var value = Int(first) & limit
        guard value == limit else { return value }
        var shift = 0
        while true {
            let next = try byte()
            value += Int(next & 0x7F) << shift
            if next & 0x80 == 0 { return value }
            shift += 7
            guard shift <= 21 else { throw .init(description: "an integer over 2^28") }
        }
    }
}
