import NIOCore
import NIOHTTP1

/// How a response head goes into an HTTP/2 header block (HPACK, RFC 7541).
///
/// Every field is a literal that is not indexed: the block is written straight from the head,
/// with no dynamic table to search, update or keep in step with the peer's table size, and no
/// Huffman coding. Names and statuses HPACK's static table has are sent as its index. A block
/// comes out larger than a fully compressed one (a few hundred bytes, against some tens), which
/// on the response path costs less than the compression did.
package enum HTTP2ResponseFields {
    /// The block for a response head: `:status` and the regular fields, lower-cased, without
    /// the HTTP/1 connection-level fields HTTP/2 forbids.
    package static func encode(_ head: HTTPResponseHead, into buffer: inout ByteBuffer) {
        encodeStatus(head.status, into: &buffer)
        encode(head.headers, into: &buffer)
    }

    /// `:status`, a block's first field.
    package static func encodeStatus(_ status: HTTPResponseStatus, into buffer: inout ByteBuffer) {
        let code = status.code
        if let index = staticStatusIndex(code) {
            buffer.writeInteger(0x80 | index)
        } else {
            // `:status` is the static table's eighth name.
            buffer.writeInteger(UInt8(0x08))
            writeString(String(code), into: &buffer)
        }
    }

    /// The regular fields of a head or of trailers.
    package static func encode(_ headers: HTTPHeaders, into buffer: inout ByteBuffer) {
        for (name, value) in headers {
            HTTP2FieldSyntax.withBytes(of: name) { name in
                HTTP2FieldSyntax.withBytes(of: value) { value in encodeField(name: name, value: value, into: &buffer) }
            }
        }
    }

    /// A regular field from its bytes: the name lower-cased (sent as the static table's index
    /// when it has it); nothing for the HTTP/1 connection-level fields HTTP/2 forbids.
    ///
    /// The field is written in one reservation of the buffer (a write per byte or piece costs
    /// several times more than the field's bytes).
    package static func encodeField(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, into buffer: inout ByteBuffer) {
        if HTTP2FieldSyntax.isConnectionSpecific(name) { return }
        let room = 1 + 2 * maximumIntegerBytes + name.count + value.count
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: room) { out in
            var written: Int
            if let index = staticNameIndex(name) {
                written = writeInteger(index, prefixBits: 4, flags: 0, into: out, at: 0)
            } else {
                out[0] = 0
                written = 1 + writeInteger(name.count, prefixBits: 7, flags: 0, into: out, at: 1)
                copyLowerCased(name, into: out, at: written)
                written += name.count
            }
            written += writeInteger(value.count, prefixBits: 7, flags: 0, into: out, at: written)
            precondition(written + value.count <= out.count, "a field outgrew the room reserved for it")
            if value.count > 0 {
                // Through the base addresses: a slice of the room was copied through generic code.
                (out.baseAddress! + written).copyMemory(from: value.baseAddress!, byteCount: value.count)
            }
            return written + value.count
        }
    }

    /// `name` lower-cased into `out` from `offset`, eight bytes at a time.
    @inline(__always)
    private static func copyLowerCased(_ name: UnsafeRawBufferPointer, into out: UnsafeMutableRawBufferPointer, at offset: Int) {
        precondition(offset + name.count <= out.count, "a name outgrew the room reserved for it")
        guard let source = name.baseAddress, let target = out.baseAddress?.advanced(by: offset) else { return }
        var index = 0
        while index + 8 <= name.count {
            let word = HTTP2FieldSyntax.lowerCased(word: source.loadUnaligned(fromByteOffset: index, as: UInt64.self))
            target.storeBytes(of: word, toByteOffset: index, as: UInt64.self)
            index += 8
        }
        while index < name.count {
            target.storeBytes(of: HTTP2FieldSyntax.lowerCased(name[index]), toByteOffset: index, as: UInt8.self)
            index += 1
        }
    }

    /// A dynamic table size update (RFC 7541, 6.3): begins a block.
    package static func writeTableSizeUpdate(to size: Int, into buffer: inout ByteBuffer) {
        writeInteger(size, prefixBits: 5, flags: 0x20, into: &buffer)
    }

    /// The static table's full match for the statuses it has (RFC 7541, appendix A).
    private static func staticStatusIndex(_ code: UInt) -> UInt8? {
        switch code {
        case 200: return 8
        case 204: return 9
        case 206: return 10
        case 304: return 11
        case 400: return 12
        case 404: return 13
        case 500: return 14
        default: return nil
        }
    }

    /// The static table's index of the common response field names it has, in any case.
    private static func staticNameIndex(_ name: UnsafeRawBufferPointer) -> Int? {
        switch name.count {
        case 4: return HTTP2FieldSyntax.matches(name, "date") ? 33 : HTTP2FieldSyntax.matches(name, "etag") ? 34 : HTTP2FieldSyntax.matches(name, "vary") ? 59 : nil
        case 6: return HTTP2FieldSyntax.matches(name, "server") ? 54 : nil
        case 8: return HTTP2FieldSyntax.matches(name, "location") ? 46 : nil
        case 10: return HTTP2FieldSyntax.matches(name, "set-cookie") ? 55 : nil
        case 11: return HTTP2FieldSyntax.matches(name, "retry-after") ? 53 : nil
        case 12: return HTTP2FieldSyntax.matches(name, "content-type") ? 31 : nil
        case 13: return HTTP2FieldSyntax.matches(name, "cache-control") ? 24 : HTTP2FieldSyntax.matches(name, "last-modified") ? 44 : nil
        case 14: return HTTP2FieldSyntax.matches(name, "content-length") ? 28 : nil
        case 16: return HTTP2FieldSyntax.matches(name, "content-encoding") ? 26 : nil
        default: return nil
        }
    }

    /// A string literal without Huffman coding.
    private static func writeString(_ string: String, into buffer: inout ByteBuffer) {
        writeInteger(string.utf8.count, prefixBits: 7, flags: 0, into: &buffer)
        buffer.writeString(string)
    }

    /// An HPACK integer (RFC 7541, 5.1) in the low `prefixBits` of a first byte whose high bits
    /// are `flags`.
    package static func writeInteger(_ value: Int, prefixBits: Int, flags: UInt8, into buffer: inout ByteBuffer) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: maximumIntegerBytes) { out in
            writeInteger(value, prefixBits: prefixBits, flags: flags, into: out, at: 0)
        }
    }

    /// The most bytes an HPACK integer of a non-negative Int takes: its first byte, and seven
    /// bits in each of up to ten more.
    private static let maximumIntegerBytes = 11

    /// An HPACK integer written at `index` of memory with room for `maximumIntegerBytes` there.
    /// - Returns: the bytes written.
    private static func writeInteger(
        _ value: Int,
        prefixBits: Int,
        flags: UInt8,
        into out: UnsafeMutableRawBufferPointer,
        at index: Int
    ) -> Int {
        precondition(value >= 0 && index + maximumIntegerBytes <= out.count, "an HPACK integer outgrew its room")
        let limit = (1 << prefixBits) - 1
        if value < limit {
            out[index] = flags | UInt8(value)
            return 1
        }
        out[index] = flags | UInt8(limit)
        var count = 1
        var rest = value - limit
        while rest >= 128 {
            out[index + count] = UInt8(rest & 0x7F | 0x80)
            rest >>= 7
            count += 1
        }
        out[index + count] = UInt8(rest)
        return count + 1
    }
}
