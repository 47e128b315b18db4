import HTTPFieldText
import NIOCore
import NIOHTTP1

/// An upstream's HTTP/1.1 response head as it arrived: its status, its bytes, and where each
/// field's name and value lie in them.
///
/// The proxy reads a response head's few fields it needs (framing, `Connection`) and forwards
/// the rest to an HTTP/1.1 client as the bytes received: no String per name and value, no
/// `HTTPHeaders` built to be taken apart again. `headers` builds them for the cases that need
/// them (an HTTP/2 client, a WebSocket's 101).
struct ReceivedResponseHead: Equatable {
    struct Field: Equatable {
        /// Offsets into `bytes`' readable bytes.
        let name: Range<Int>
        /// Without the whitespace around the value.
        let value: Range<Int>
    }

    /// What the framing fields say, read in the parser's pass over the fields.
    struct Framing: Equatable {
        private(set) var lengthFields = 0
        /// The last `Content-Length`'s value, nil when it is not a number.
        private(set) var length: Int?
        /// The transfer codings listed, over every `Transfer-Encoding` field.
        private(set) var codings = 0
        private(set) var lastCodingIsChunked = false

        @inline(__always)
        mutating func read(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
            if name.count == 14 && ASCIIText.equals(name, lowercased: "content-length") {
                lengthFields += 1
                length = RequestBodyFraming.decimal(value)
            } else if name.count == 17 && ASCIIText.equals(name, lowercased: "transfer-encoding") {
                ASCIIText.forEachListElement(value) { coding in
                    codings += 1
                    lastCodingIsChunked = ASCIIText.equals(coding, lowercased: "chunked")
                }
            }
        }

        var hasLength: Bool { lengthFields > 0 }
    }

    let version: HTTPVersion
    let status: HTTPResponseStatus
    /// The whole head, status line to the empty line (checked by HTTP1HeadParser).
    let bytes: ByteBuffer
    let fields: [Field]
    let framing: Framing
    /// What its `Connection` and other hop-by-hop fields say.
    let options: ConnectionOptions

    /// Calls `body` with each field's name and value bytes, in order.
    func forEachField(_ body: (_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Void) {
        bytes.withUnsafeReadableBytes { bytes in
            for field in fields {
                body(UnsafeRawBufferPointer(rebasing: bytes[field.name]), UnsafeRawBufferPointer(rebasing: bytes[field.value]))
            }
        }
    }

    /// The fields as Strings (values through FieldText, so their bytes are kept exactly).
    var headers: HTTPHeaders {
        var fields: [(String, String)] = []
        fields.reserveCapacity(self.fields.count)
        forEachField { name, value in
            fields.append((String(decoding: name, as: UTF8.self), FieldText.string(value)))
        }
        return HTTPHeaders(fields)
    }

    var head: HTTPResponseHead {
        HTTPResponseHead(version: version, status: status, headers: headers)
    }
}
