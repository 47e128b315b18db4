import NIOCore
import NIOHTTP1

/// Cuts the bytes of an HTTP/1.1 connection into heads, body parts and ends: requests on a
/// client connection, responses on an upstream connection.
///
/// The gateway decides a request's framing here, from what this parser saw, and forwards only
/// what it framed: a body is exactly `Content-Length` bytes or a chunked body decoded here (and
/// re-encoded by us upstream), and a request with neither has no body. Anything a peer could read
/// differently is refused instead of guessed: both framing headers, a repeated `Content-Length`,
/// a transfer coding other than `chunked` alone, folded lines, bare CR or LF, control bytes.
/// A response ends exactly where its framing says; a byte after it, before the next request was
/// sent, is an upstream speaking out of turn.
///
/// Every byte a peer sends is either consumed or held in a bounded buffer: a head (first line
/// to the empty line, whitespace included) and a trailer section hold at most `maxHeadBytes`, a
/// chunk-size line at most `maxChunkLineBytes`. Body bytes are handed out as slices of the read
/// buffer, never copied.
struct HTTP1Parser {
    enum Role {
        case request
        case response
    }

    enum Part: Equatable {
        case requestHead(ClientRequest)
        case responseHead(ReceivedResponseHead)
        case body(ByteBuffer)
        case end(HTTPHeaders?)
        /// Bytes after a WebSocket handshake: no longer HTTP, never parsed, handed out as they
        /// come (see WebSocketUpgrade).
        case tunnel(ByteBuffer)
    }

    /// What a read has come to: a part, or not yet one.
    enum Progress {
        case part(Part)
        /// The next part has not arrived whole yet (or nothing more may be read).
        case needsBytes
    }

    private enum State {
        case head
        /// A response parser between exchanges: no byte may arrive.
        case awaitingRequest
        case fixedBody(remaining: Int)
        /// A response delimited by the connection's close.
        case untilClose
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        /// After a WebSocket handshake request (its answer may yet refuse it), or an upstream's
        /// 101 to one: every later byte is the tunnel's.
        case tunnel
        case failed
    }

    static let maxChunkLineBytes = 4096

    let role: Role
    let maxHeadBytes: Int
    private var state: State
    /// The method of the request a response parser reads the answer to (a HEAD's has no body).
    private var requestMethod = HTTPMethod.GET
    /// A head, trailer section or chunk line cut off by the end of a read.
    private var partial: ByteBuffer?
    /// How far `partial` has been searched for its terminator.
    private var partialScanned = 0
    /// Whether the request line of the head in `partial` is whole and has been checked.
    private var requestLineChecked = false
    /// Bytes of empty lines skipped before the request being read.
    private var emptyLineBytes = 0
    /// Where the last head was built (its fields' locations, and a request's copied bytes),
    /// handed to the next (see HTTP1HeadParser.RequestRoom).
    private var requestRoom = HTTP1HeadParser.RequestRoom()
    private var responseFieldsRoom: [ReceivedResponseHead.Field] = []
    /// Request side: the message being read is a WebSocket handshake, so no request follows it.
    /// Response side: the request sent was one, so a 101 opens the tunnel.
    private var tunnelAfterMessage = false

    /// Whether the bytes are now a tunnel's, not HTTP.
    var isTunnel: Bool {
        if case .tunnel = state { return true }
        return false
    }

    /// Whether a message's body (or its trailers) is being read: its sender owes more bytes
    /// before the message is whole.
    var isWithinBody: Bool {
        switch state {
        case .fixedBody(let remaining): return remaining > 0
        case .untilClose, .chunkSize, .chunkData, .chunkDataEnd, .trailers: return true
        case .head, .awaitingRequest, .tunnel, .failed: return false
        }
    }

    init(role: Role, maxHeadBytes: Int) {
        self.role = role
        self.maxHeadBytes = maxHeadBytes
        state = role == .request ? .head : .awaitingRequest
    }

    /// A response parser: the request whose answer comes next has been sent.
    /// - Parameter tunnel: it is a WebSocket handshake, whose 101 opens a tunnel.
    mutating func expectResponse(to method: HTTPMethod, tunnel: Bool = false) {
        if case .awaitingRequest = state {
            state = .head
            requestMethod = method
            tunnelAfterMessage = tunnel
        }
    }

    /// The peer closed its side: the end of a body that runs until the close, or nothing; a
    /// message cut short is an error.
    mutating func finish() throws(HTTP1RequestError) -> Part? {
        switch state {
        case .untilClose:
            state = .failed
            return .end(nil)
        case .head where partial == nil, .awaitingRequest, .failed, .tunnel:
            return nil
        default:
            state = .failed
            throw .malformed("the connection closed mid-message")
        }
    }

    /// The next part the bytes in `buffer` complete, consuming them; nil when more bytes are needed
    /// (what is left of `buffer` is then kept or already consumed). After a throw every later byte
    /// is ignored: the connection cannot be read any further.
    mutating func next(_ buffer: inout ByteBuffer) throws(HTTP1RequestError) -> Part? {
        guard case .part(let part) = try advance(&buffer) else { return nil }
        return part
    }

    /// `next` for the codecs' loops: a part or the need of more bytes, as an enum of our own,
    /// whose destruction is compiled for it (an optional part's goes through the runtime's
    /// generic `Optional`, its metadata and the part's tag, on every read).
    mutating func advance(_ buffer: inout ByteBuffer) throws(HTTP1RequestError) -> Progress {
        do {
            return try step(&buffer)
        } catch {
            state = .failed
            partial = nil
            throw error
        }
    }

    private mutating func step(_ buffer: inout ByteBuffer) throws(HTTP1RequestError) -> Progress {
        while true {
            switch state {
            case .failed:
                buffer.moveReaderIndex(to: buffer.writerIndex)
                return .needsBytes
            case .awaitingRequest:
                guard buffer.readableBytes == 0 else { throw .malformed("bytes before any request was sent") }
                return .needsBytes
            case .untilClose:
                guard buffer.readableBytes > 0 else { return .needsBytes }
                return .part(.body(buffer.readSlice(length: buffer.readableBytes)!))
            case .tunnel:
                guard buffer.readableBytes > 0 else { return .needsBytes }
                return .part(.tunnel(buffer.readSlice(length: buffer.readableBytes)!))
            case .head where role == .response:
                let head: ReceivedResponseHead
                if partial == nil, let whole = wholeResponseHead(in: &buffer) {
                    head = whole
                } else {
                    guard let section = try collect(&buffer, terminator: .emptyLine, limit: maxHeadBytes) else {
                        return .needsBytes
                    }
                    head = try HTTP1HeadParser.responseHead(section, fieldsIn: &responseFieldsRoom)
                }
                if head.status.code < 200 && head.status != .switchingProtocols {
                    // Interim answers (100, 103) are dropped: the final one follows.
                    continue
                }
                if head.status == .switchingProtocols {
                    guard tunnelAfterMessage else { throw .malformed("a 101 to a request that asked for no upgrade") }
                    guard WebSocketUpgrade.isAccepted(head.head) else { throw .malformed("a 101 to another protocol than websocket") }
                    state = .tunnel
                    return .part(.responseHead(head))
                }
                state = try Self.bodyState(for: head, answering: requestMethod)
                return .part(.responseHead(head))
            case .head:
                // A lone CR left by a read: the start of an empty line to skip.
                takeBackLoneCR(into: &buffer)
                if partial == nil {
                    // Skipped (RFC 9112, 2.2), but counted: a client sending nothing but line
                    // ends would otherwise be read for ever.
                    emptyLineBytes += Self.skipEmptyLines(&buffer)
                    guard emptyLineBytes <= maxHeadBytes else { throw .malformed("more empty lines before a request than a head may hold") }
                }
                let request: ClientRequest
                if partial == nil, let whole = wholeRequestHead(in: &buffer) {
                    request = whole
                } else {
                    guard let section = try collect(&buffer, terminator: .emptyLine, limit: maxHeadBytes) else {
                        return .needsBytes
                    }
                    request = try section.withUnsafeReadableBytes { bytes throws(HTTP1RequestError) in
                        try HTTP1HeadParser.requestHead(bytes, room: &requestRoom).request
                    }
                }
                requestLineChecked = false
                emptyLineBytes = 0
                let framing = try request.fields.validate(version: request.version).get()
                state = Self.bodyState(for: framing)
                tunnelAfterMessage = WebSocketUpgrade.opensTunnel(request, framing: framing)
                return .part(.requestHead(request))
            case .fixedBody(let remaining):
                if remaining == 0 {
                    state = messageEnded
                    return .part(.end(nil))
                }
                guard buffer.readableBytes > 0 else { return .needsBytes }
                let length = min(remaining, buffer.readableBytes)
                state = .fixedBody(remaining: remaining - length)
                return .part(.body(buffer.readSlice(length: length)!))
            case .chunkSize:
                guard let line = try collect(&buffer, terminator: .lineEnd, limit: Self.maxChunkLineBytes) else {
                    return .needsBytes
                }
                let size = try line.withUnsafeReadableBytes { bytes throws(HTTP1RequestError) in
                    try Self.chunkSize(bytes)
                }
                state = size == 0 ? .trailers : .chunkData(remaining: size)
            case .chunkData(let remaining):
                guard buffer.readableBytes > 0 else { return .needsBytes }
                let length = min(remaining, buffer.readableBytes)
                state = length == remaining ? .chunkDataEnd : .chunkData(remaining: remaining - length)
                return .part(.body(buffer.readSlice(length: length)!))
            case .chunkDataEnd:
                guard let line = try collect(&buffer, terminator: .lineEnd, limit: 2) else { return .needsBytes }
                guard line.readableBytes == 2 else { throw .malformed("chunk data longer than its size") }
                state = .chunkSize
            case .trailers:
                // A lone CR left by a read: perhaps the empty trailer section.
                takeBackLoneCR(into: &buffer)
                if partial == nil, buffer.readableBytes >= 2, Self.startsWithLineEnd(buffer) {
                    buffer.moveReaderIndex(forwardBy: 2)
                    state = messageEnded
                    return .part(.end(nil))
                }
                guard let section = try collect(&buffer, terminator: .emptyLine, limit: maxHeadBytes) else {
                    return .needsBytes
                }
                let trailers = try section.withUnsafeReadableBytes { bytes throws(HTTP1RequestError) in
                    try HTTP1HeadParser.fields(bytes, from: 0).fields
                }
                state = messageEnded
                return .part(.end(trailers.isEmpty ? nil : HTTPHeaders(trailers)))
            }
        }
    }

    /// After a message: the next request, or (never pipelining upstream) silence until the next
    /// request is sent.
    private var messageEnded: State {
        if role == .request && tunnelAfterMessage { return .tunnel }
        return role == .request ? .head : .awaitingRequest
    }

    /// What follows a response head (RFC 9112, 6.3): nothing for a HEAD's answer, 204 and 304;
    /// chunked, a length, or everything until the close. Both framing headers at once are
    /// refused, and so is any transfer coding but `chunked` alone (as nginx refuses it): the
    /// gateway decodes none, and a body still coded, passed on without the field that said so,
    /// would reach the client as garbage.
    private static func bodyState(for head: ReceivedResponseHead, answering method: HTTPMethod) throws(HTTP1RequestError) -> State {
        if method.isHEAD || head.status == .noContent || head.status == .notModified { return .fixedBody(remaining: 0) }
        let framing = head.framing
        if framing.codings > 0 {
            guard !framing.hasLength else { throw .malformed("both Content-Length and Transfer-Encoding") }
            guard framing.codings == 1, framing.lastCodingIsChunked else { throw .malformed("a transfer coding other than chunked alone") }
            return .chunkSize
        }
        guard framing.lengthFields <= 1 else { throw .malformed("more than one Content-Length") }
        guard framing.hasLength else { return .untilClose }
        guard let length = framing.length else { throw .malformed("Content-Length is not a number") }
        return .fixedBody(remaining: length)
    }

    private static func bodyState(for framing: RequestBodyFraming) -> State {
        switch framing {
        case .none: return .fixedBody(remaining: 0)
        case .length(let length): return .fixedBody(remaining: length)
        case .chunked: return .chunkSize
        }
    }

    // MARK: heads read in place

    /// A request head that arrived whole in `buffer`, read where it is: most heads come in one
    /// read, and the head parser finds their empty line itself, so the search for it that
    /// `collect` makes first is spared. Anything else (a head cut off, too large or malformed)
    /// is left to `collect` and the parse after it, which decide; this is only ever tried on
    /// the first bytes of a head, so a head arriving a byte at a time is not parsed again at
    /// every read.
    /// - Returns: the head, its bytes consumed; nil when `buffer` holds no valid whole head
    ///   within `maxHeadBytes`.
    private mutating func wholeRequestHead(in buffer: inout ByteBuffer) -> ClientRequest? {
        let parsed = buffer.withUnsafeReadableBytes { bytes in try? HTTP1HeadParser.requestHead(bytes, room: &requestRoom) }
        guard let parsed, parsed.end <= maxHeadBytes else { return nil }
        buffer.moveReaderIndex(forwardBy: parsed.end)
        return parsed.request
    }

    /// `wholeRequestHead` for a response head.
    private mutating func wholeResponseHead(in buffer: inout ByteBuffer) -> ReceivedResponseHead? {
        guard let head = try? HTTP1HeadParser.responseHead(buffer, fieldsIn: &responseFieldsRoom), head.bytes.readableBytes <= maxHeadBytes
        else { return nil }
        buffer.moveReaderIndex(forwardBy: head.bytes.readableBytes)
        return head
    }

    // MARK: sections cut at a terminator

    /// Puts a one-byte `partial` back in front of `buffer`, so that an empty line cut after its
    /// CR is recognised as one.
    private mutating func takeBackLoneCR(into buffer: inout ByteBuffer) {
        guard var pending = partial, pending.readableBytes == 1 else { return }
        partial = nil
        partialScanned = 0
        pending.writeBuffer(&buffer)
        buffer = pending
    }

    private enum Terminator {
        /// CRLF: a chunk line.
        case lineEnd
        /// CRLF CRLF: a head or a trailer section.
        case emptyLine

        var bytes: Int { self == .lineEnd ? 2 : 4 }
    }

    /// The bytes up to and including `terminator`, from `partial` and `buffer`; nil when it has not
    /// arrived yet (the bytes so far are then kept in `partial`). Past `limit` bytes without it,
    /// the section is too large.
    private mutating func collect(
        _ buffer: inout ByteBuffer,
        terminator: Terminator,
        limit: Int
    ) throws(HTTP1RequestError) -> ByteBuffer? {
        if partial == nil && buffer.readableBytes == 0 { return nil }
        if var pending = partial {
            partial = nil
            pending.writeBuffer(&buffer)
            buffer = pending
        }
        let scanFrom = max(0, partialScanned - (terminator.bytes - 1))
        if let end = Self.find(terminator, in: buffer, from: scanFrom) {
            partialScanned = 0
            guard end <= limit else { throw tooLarge(terminator, buffer, limit: limit) }
            return buffer.readSlice(length: end)
        }
        guard buffer.readableBytes <= limit else { throw tooLarge(terminator, buffer, limit: limit) }
        try checkIncomplete(buffer, newFrom: partialScanned)
        partialScanned = buffer.readableBytes
        partial = buffer.readSlice(length: buffer.readableBytes)
        return nil
    }

    /// Whether an LF at or after `start` has no CR before it.
    private static func hasBareLineFeed(in buffer: ByteBuffer, from start: Int) -> Bool {
        buffer.withUnsafeReadableBytes { bytes in
            let lf = UInt8(ascii: "\n")
            var index = start
            while true {
                index = ByteScan.first(lf, in: bytes, from: index, before: bytes.count)
                guard index < bytes.count else { return false }
                if index == 0 || bytes[index - 1] != UInt8(ascii: "\r") { return true }
                index += 1
            }
        }
    }

    /// Refuses, in a section that has not arrived whole, what can never become valid, in the
    /// order of its bytes (as a parse of the whole section would find it): a request head's first
    /// line once it has come, then a line ended by LF alone, which never makes the terminator
    /// (refused now, not waited on until the limit or the idle timeout; only the bytes new since
    /// `start` are searched).
    private mutating func checkIncomplete(_ buffer: ByteBuffer, newFrom start: Int) throws(HTTP1RequestError) {
        if role == .request, case .head = state, !requestLineChecked {
            requestLineChecked = try buffer.withUnsafeReadableBytes { bytes throws(HTTP1RequestError) in
                try HTTP1HeadParser.checkIncompleteHead(bytes)
            }
        }
        if Self.hasBareLineFeed(in: buffer, from: start) { throw .malformed("a line ends in LF without CR") }
    }

    /// A section past its limit in `buffer`. The bytes within the limit are first checked as
    /// they would have been had they come in smaller pieces, before the limit was reached, so
    /// that the answer does not depend on where a peer's reads ended.
    private mutating func tooLarge(_ terminator: Terminator, _ buffer: ByteBuffer, limit: Int) -> HTTP1RequestError {
        guard terminator == .emptyLine else { return .malformed("a chunk line is too long") }
        do {
            try checkIncomplete(buffer.getSlice(at: buffer.readerIndex, length: min(limit, buffer.readableBytes))!, newFrom: 0)
        } catch {
            return error
        }
        return .headTooLarge
    }

    /// The offset just past the first terminator at or after `start`, or nil.
    private static func find(_ terminator: Terminator, in buffer: ByteBuffer, from start: Int) -> Int? {
        buffer.withUnsafeReadableBytes { bytes in
            let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")
            var index = start
            let last = bytes.count - terminator.bytes
            while index <= last {
                index = ByteScan.first(cr, in: bytes, from: index, before: last + 1)
                guard index <= last else { return nil }
                if bytes[index + 1] == lf {
                    if terminator == .lineEnd { return index + 2 }
                    if bytes[index + 2] == cr && bytes[index + 3] == lf { return index + 4 }
                }
                index += 1
            }
            return nil
        }
    }

    private static func startsWithLineEnd(_ buffer: ByteBuffer) -> Bool {
        buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) == 0x0D0A
    }

    /// RFC 9112, 2.2: a server should ignore empty lines before a request line.
    /// - Returns: the bytes skipped.
    private static func skipEmptyLines(_ buffer: inout ByteBuffer) -> Int {
        var skipped = 0
        while buffer.readableBytes >= 2, startsWithLineEnd(buffer) {
            buffer.moveReaderIndex(forwardBy: 2)
            skipped += 2
        }
        return skipped
    }

    /// `chunk-size [ chunk-ext ] CRLF`: hexadecimal digits, then optional extensions (ignored).
    private static func chunkSize(_ line: UnsafeRawBufferPointer) throws(HTTP1RequestError) -> Int {
        let content = line.count - 2
        var size = 0
        var index = 0
        while index < content, let digit = ASCIIText.hexValue(line[index]) {
            guard index < 15 else { throw .malformed("a chunk size is too large") }
            size = size << 4 | Int(digit)
            index += 1
        }
        guard index > 0 else { throw .malformed("a chunk size is not hexadecimal") }
        if index < content {
            // Extensions: whitespace, then `;` and field-value bytes; nothing else may follow.
            while index < content, line[index] == UInt8(ascii: " ") || line[index] == UInt8(ascii: "\t") {
                index += 1
            }
            guard index < content, line[index] == UInt8(ascii: ";") else {
                throw .malformed("unexpected bytes after a chunk size")
            }
            let lineContent = UnsafeRawBufferPointer(rebasing: line[..<content])
            guard HTTP1HeadParser.fieldValueEnd(lineContent, from: index) == content else {
                throw .malformed("a control byte in a chunk extension")
            }
        }
        return size
    }
}

/// Why a client's bytes cannot be read as a request; each is answered, then the connection closes.
enum HTTP1RequestError: Error, Equatable {
    /// 431: a head or a trailer section longer than `max_header_bytes`.
    case headTooLarge
    /// 400.
    case malformed(String)
    /// 501: a transfer coding other than `chunked` alone.
    case unsupportedTransferCoding
    /// 505: not HTTP/1.x.
    case unsupportedVersion
}
