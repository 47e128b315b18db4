import CHiredis
import NIOCore

/// hiredis's RESP reader: bytes go in as they arrive, complete replies come out. hiredis only
/// parses here; it never reads from a socket.
final class RedisReplyReader {
    private let reader: UnsafeMutablePointer<redisReader>

    init() {
        guard let reader = redisReaderCreate() else { fatalError("hiredis could not allocate a reader (out of memory)") }
        self.reader = reader
    }

    deinit {
        redisReaderFree(reader)
    }

    func feed(_ buffer: ByteBuffer) throws {
        let status = buffer.withUnsafeReadableBytes { bytes in
            redisReaderFeed(reader, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        if status != REDIS_OK { throw RedisProtocolError("hiredis: \(errorText)") }
    }

    /// The next complete reply, or nil when more bytes are needed.
    func next() throws -> RedisValue? {
        var raw: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &raw) == REDIS_OK else {
            throw RedisProtocolError("malformed reply: \(errorText)")
        }
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        return try Self.convert(raw.assumingMemoryBound(to: redisReply.self).pointee)
    }

    private var errorText: String {
        withUnsafeBytes(of: reader.pointee.errstr) { bytes in
            String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    private static func convert(_ reply: redisReply) throws -> RedisValue {
        func text() -> String {
            guard let pointer = reply.str else { return "" }
            return String(decoding: UnsafeRawBufferPointer(start: pointer, count: reply.len), as: UTF8.self)
        }
        switch reply.type {
        case REDIS_REPLY_STRING: return .bulkString(text())
        case REDIS_REPLY_STATUS: return .simpleString(text())
        case REDIS_REPLY_ERROR: return .error(text())
        case REDIS_REPLY_INTEGER: return .integer(Int(reply.integer))
        case REDIS_REPLY_NIL: return .null
        case REDIS_REPLY_ARRAY:
            var items: [RedisValue] = []
            items.reserveCapacity(reply.elements)
            for index in 0..<reply.elements {
                guard let element = reply.element[index] else { throw RedisProtocolError("array reply with a hole") }
                items.append(try convert(element.pointee))
            }
            return .array(items)
        default:
            throw RedisProtocolError("reply of unknown type \(reply.type)")
        }
    }
}
