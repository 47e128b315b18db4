import HTTPFieldText
import NIOCore

/// Writing a value FieldText made back as the bytes received.
extension FieldText {
    /// Writes the bytes received of a value whose UTF-8 is `utf8`.
    static func write(_ utf8: UnsafeRawBufferPointer, into buffer: inout ByteBuffer) {
        HTTP1Writer.write(into: &buffer, atMost: utf8.count) { out in write(utf8, into: &out) }
    }

    /// Writes the bytes received of a value whose UTF-8 is `utf8`: at most `utf8.count` bytes
    /// (an escaped byte takes four in UTF-8 and one as received).
    static func write(_ utf8: UnsafeRawBufferPointer, into out: inout OutputCursor) {
        guard holdsRawBytes(utf8) else {
            out.append(utf8)
            return
        }
        for scalar in String(decoding: utf8, as: UTF8.self).unicodeScalars {
            if let byte = escapedByte(scalar) {
                out.append(byte)
            } else {
                UTF8.encode(scalar) { out.append($0) }
            }
        }
    }
}
