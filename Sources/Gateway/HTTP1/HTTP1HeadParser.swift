import HTTPFieldText
import NIOCore
import NIOHTTP1

/// Reads a complete HTTP/1.1 request head (request line, fields, empty line) by the strict rules
/// of RFC 9112: one space between the parts of the request line, CRLF line ends, no whitespace
/// between a field name and its colon, no folded lines, no control bytes in a value.
enum HTTP1HeadParser {
    /// Where a parser builds request heads, handed again for each, so that a head costs no
    /// allocation once the one before it is gone: the field locations' array, and the buffer
    /// the head's bytes are copied into (a copy, not a slice of what was read: a slice would keep
    /// the whole receive buffer, however large a read made it, for as long as the request lives).
    struct RequestRoom {
        var fields: [ClientFields.Location] = []
        var bytes = ReusableHeadBuffer()
        /// The last `Host` value, made from bytes its text is the UTF-8 of: a keep-alive client
        /// names the same host in every request, and its String is made and checked once.
        private var host: ReceivedHost?

        mutating func receivedHost(_ bytes: UnsafeRawBufferPointer) -> ReceivedHost {
            if let host, host.text.hasUTF8(bytes) { return host }
            let made = ReceivedHost(FieldText.string(bytes))
            // A value holding obs-text is made into other UTF-8 (FieldText), and is never reused.
            host = made.text.hasUTF8(bytes) ? made : nil
            return made
        }
    }

    /// - Parameters:
    ///   - bytes: a head, its final CRLF CRLF included, and perhaps bytes after it.
    ///   - room: where the head is built (`RequestRoom`).
    /// - Returns: the head, its fields where they lie in a copy of its bytes and what they say;
    ///   and where it ends (just past its empty line).
    static func requestHead(
        _ bytes: UnsafeRawBufferPointer,
        room: inout RequestRoom
    ) throws(HTTP1RequestError) -> (request: ClientRequest, end: Int) {
        let line = try requestLine(bytes)
        let method = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[line.method]), as: UTF8.self)
        let target = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[line.target]), as: UTF8.self)
        var summary = RequestFields()
        room.fields.removeAll(keepingCapacity: true)
        // Room for a typical head's fields at once, instead of growing four or five times.
        room.fields.reserveCapacity(16)
        let end = try scanFields(bytes, from: line.end) { name, value in
            room.fields.append(.init(name: name, value: value))
            let valueBytes = UnsafeRawBufferPointer(rebasing: bytes[value])
            // `host` is asked for the `Host` field's value alone.
            summary.read(name: UnsafeRawBufferPointer(rebasing: bytes[name]), value: valueBytes, host: room.receivedHost(valueBytes))
        }
        var head = room.bytes.take(ByteBufferAllocator())
        head.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[0..<end]))
        room.bytes.keep(head)
        let request = ClientRequest(
            method: HTTPMethod(rawValue: method), uri: target, version: line.version,
            headers: ClientFields(received: head, fields: room.fields), fields: summary
        )
        return (request, end)
    }

    /// - Parameters:
    ///   - buffer: a response head at its reader index, its final CRLF CRLF included: `HTTP/1.x
    ///     SP 3DIGIT [SP reason] CRLF`, then fields; perhaps bytes after it. Its fields are
    ///     located, not copied; the head keeps a slice of `buffer` up to its empty line.
    ///   - room: as `requestHead`'s.
    static func responseHead(
        _ buffer: ByteBuffer,
        fieldsIn room: inout [ReceivedResponseHead.Field]
    ) throws(HTTP1RequestError) -> ReceivedResponseHead {
        try buffer.withUnsafeReadableBytes { bytes throws(HTTP1RequestError) in
            guard bytes.count >= 14, startsWith(bytes, at: 0, "HTTP/1."), isDigit(bytes[7]), bytes[8] == space,
                isDigit(bytes[9]), isDigit(bytes[10]), isDigit(bytes[11])
            else {
                throw .malformed("the status line is not HTTP/1.x with a status code")
            }
            let code = Int(bytes[9] - 48) * 100 + Int(bytes[10] - 48) * 10 + Int(bytes[11] - 48)
            // RFC 9110 15: a status code is 100 to 599 (classes 6 to 9 passed on as sent, as
            // clients read them by their first digit). Below 100 there is no class: read as an
            // interim answer, it left the exchange waiting for a final one that never came.
            guard code >= 100 else { throw .malformed("a status code below 100") }
            var index = 12
            if bytes[index] == space {
                index = fieldValueEnd(bytes, from: index)
                guard index == bytes.count || bytes[index] == cr else { throw .malformed("a control byte in the reason phrase") }
            }
            guard index + 1 < bytes.count, bytes[index] == cr, bytes[index + 1] == lf else {
                throw .malformed("the status line does not end with CRLF")
            }
            room.removeAll(keepingCapacity: true)
            room.reserveCapacity(16)
            var framing = ReceivedResponseHead.Framing()
            var options = ConnectionOptions()
            let end = try scanFields(bytes, from: index + 2) { name, value in
                room.append(.init(name: name, value: value))
                let nameBytes = UnsafeRawBufferPointer(rebasing: bytes[name])
                let valueBytes = UnsafeRawBufferPointer(rebasing: bytes[value])
                framing.read(name: nameBytes, value: valueBytes)
                options.read(name: nameBytes, value: valueBytes)
            }
            let version: HTTPVersion = bytes[7] == UInt8(ascii: "0") ? .http1_0 : .http1_1
            return ReceivedResponseHead(
                version: version, status: HTTPResponseStatus(statusCode: code), bytes: buffer.getSlice(at: buffer.readerIndex, length: end)!,
                fields: room, framing: framing, options: options
            )
        }
    }

    /// Checks the start of a head that has not fully arrived, so that bytes that are no request
    /// are refused at once instead of waiting for an empty line that may never come.
    /// - Returns: whether the request line is whole (and so checked for good).
    static func checkIncompleteHead(_ bytes: UnsafeRawBufferPointer) throws(HTTP1RequestError) -> Bool {
        var index = 0
        while index < bytes.count, bytes[index] != cr {
            guard (0x20...0x7E).contains(bytes[index]) else {
                throw .malformed("the request line holds a byte it may not")
            }
            index += 1
        }
        guard index + 1 < bytes.count else { return false }
        _ = try requestLine(bytes)
        return true
    }

    /// `method SP request-target SP HTTP-version CRLF`: the ranges of its parts and where the
    /// fields start.
    private static func requestLine(
        _ bytes: UnsafeRawBufferPointer
    ) throws(HTTP1RequestError) -> (method: Range<Int>, target: Range<Int>, version: HTTPVersion, end: Int) {
        var index = ByteScan.firstNonMember(of: .token, in: bytes, from: 0)
        guard index > 0, index < bytes.count, bytes[index] == space else {
            throw .malformed("the request line does not start with a method")
        }
        let method = 0..<index
        index += 1
        let targetStart = index
        index = ByteScan.firstNonVisible(in: bytes, from: index)
        guard index > targetStart, index < bytes.count, bytes[index] == space else {
            throw .malformed("the request target is missing or holds a byte it may not")
        }
        let target = targetStart..<index
        index += 1
        let version = try self.version(bytes, at: index)
        return (method, target, version, index + 10)
    }

    /// `HTTP/1.0` or `HTTP/1.x` (any later minor version is served as 1.1), then CRLF.
    private static func version(_ bytes: UnsafeRawBufferPointer, at index: Int) throws(HTTP1RequestError) -> HTTPVersion {
        guard index + 10 <= bytes.count,
            startsWith(bytes, at: index, "HTTP/"),
            isDigit(bytes[index + 5]), bytes[index + 6] == UInt8(ascii: "."), isDigit(bytes[index + 7]),
            bytes[index + 8] == cr, bytes[index + 9] == lf
        else {
            throw .malformed("the request line does not end with HTTP/1.x")
        }
        guard bytes[index + 5] == UInt8(ascii: "1") else { throw .unsupportedVersion }
        return bytes[index + 7] == UInt8(ascii: "0") ? .http1_0 : .http1_1
    }

    /// Whether `text` is at `index` of `bytes` (which holds at least its length from there).
    private static func startsWith(_ bytes: UnsafeRawBufferPointer, at index: Int, _ text: StaticString) -> Bool {
        text.withUTF8Buffer { text in
            var offset = 0
            while offset < text.count {
                if bytes[index + offset] != text[offset] { return false }
                offset += 1
            }
            return true
        }
    }

    /// The fields from `start` to the empty line that ends a trailer section.
    /// - Returns: the fields, and where the section ends (just past its empty line).
    static func fields(
        _ bytes: UnsafeRawBufferPointer,
        from start: Int
    ) throws(HTTP1RequestError) -> (fields: [(String, String)], end: Int) {
        var fields: [(String, String)] = []
        let end = try scanFields(bytes, from: start) { name, value in
            let name = UnsafeRawBufferPointer(rebasing: bytes[name])
            fields.append((String(decoding: name, as: UTF8.self), FieldText.string(UnsafeRawBufferPointer(rebasing: bytes[value]))))
        }
        return (fields, end)
    }

    /// Checks the fields from `start` to the empty line, and hands over where each one's name
    /// and value (without the whitespace around it) lie.
    /// - Returns: where the section ends, just past its empty line.
    private static func scanFields(
        _ bytes: UnsafeRawBufferPointer,
        from start: Int,
        _ field: (_ name: Range<Int>, _ value: Range<Int>) -> Void
    ) throws(HTTP1RequestError) -> Int {
        var index = start
        while true {
            guard index + 1 < bytes.count else { throw .malformed("a head does not end with an empty line") }
            if bytes[index] == cr {
                guard bytes[index + 1] == lf else { throw .malformed("a bare CR") }
                return index + 2
            }
            if bytes[index] == space || bytes[index] == tab {
                throw .malformed("a folded header line")
            }
            let nameStart = index
            index = ByteScan.firstNonMember(of: .token, in: bytes, from: index)
            guard index > nameStart, index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                throw .malformed("a header line without a valid name and colon")
            }
            let name = nameStart..<index
            index += 1
            while index < bytes.count, bytes[index] == space || bytes[index] == tab { index += 1 }
            let valueStart = index
            index = fieldValueEnd(bytes, from: index)
            guard index == bytes.count || bytes[index] == cr else { throw .malformed("a control byte in a header value") }
            var valueEnd = index
            while valueEnd > valueStart && (bytes[valueEnd - 1] == space || bytes[valueEnd - 1] == tab) { valueEnd -= 1 }
            guard index + 1 < bytes.count, bytes[index + 1] == lf else { throw .malformed("a bare CR") }
            field(name, valueStart..<valueEnd)
            index += 2
        }
    }

    /// Where the field-value bytes from `start` end (RFC 9110, 5.5: HTAB, SP, visible ASCII and
    /// obs-text): at the first other byte (a line's CR, or a control byte), or at `bytes.count`.
    @inline(__always)
    static func fieldValueEnd(_ bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        var index = start
        while true {
            index = ByteScan.firstControlByte(in: bytes, from: index)
            guard index < bytes.count, bytes[index] == tab else { return index }
            index += 1
        }
    }

    /// `tchar` (RFC 9110, 5.6.2).
    @inline(__always)
    static func isTokenByte(_ byte: UInt8) -> Bool {
        ASCIIByteSet.token.contains(byte)
    }

    private static func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }

    private static let cr = UInt8(ascii: "\r")
    private static let lf = UInt8(ascii: "\n")
    private static let space = UInt8(ascii: " ")
    private static let tab = UInt8(ascii: "\t")
}
