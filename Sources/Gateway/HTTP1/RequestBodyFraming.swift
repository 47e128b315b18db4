import NIOHTTP1

/// How a request's body is delimited, decided once from its head and used for both hops: what
/// the parser reads from the client and what the gateway writes upstream. Never from a method's
/// habits and never from headers a client can name in `Connection`.
enum RequestBodyFraming: Equatable {
    case none
    case length(Int)
    case chunked

    /// The framing fields of a head, read one field at a time (in the pass over the fields that
    /// answers the other questions too), then judged once all are read. RFC 9112, 6: one
    /// `Content-Length` of digits, or `Transfer-Encoding: chunked` alone, or neither. Both at
    /// once, a repeated length, or chunked on HTTP/1.0 are refused (400); any other transfer
    /// coding cannot be read (501).
    struct Reader: Equatable {
        private var length: Int?
        private var lengthFields = 0
        private var lengthIsNumber = true
        private var codingFields = 0
        private var lastCodingIsChunked = false

        mutating func read(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer) {
            switch name.count {
            case 14 where ASCIIText.equals(name, lowercased: "content-length"):
                lengthFields += 1
                length = RequestBodyFraming.decimal(value)
                if length == nil { lengthIsNumber = false }
            case 17 where ASCIIText.equals(name, lowercased: "transfer-encoding"):
                codingFields += 1
                lastCodingIsChunked = ASCIIText.equals(value, lowercased: "chunked")
            default:
                break
            }
        }

        func validate(version: HTTPVersion) -> Result<RequestBodyFraming, HTTP1RequestError> {
            if !lengthIsNumber { return .failure(.malformed("Content-Length is not a number")) }
            if lengthFields > 1 { return .failure(.malformed("more than one Content-Length")) }
            if codingFields > 0 {
                if lengthFields > 0 { return .failure(.malformed("both Content-Length and Transfer-Encoding")) }
                if version == .http1_0 { return .failure(.malformed("Transfer-Encoding on HTTP/1.0")) }
                guard codingFields == 1, lastCodingIsChunked else { return .failure(.unsupportedTransferCoding) }
                return .success(.chunked)
            }
            return .success(length.map { .length($0) } ?? .none)
        }

        /// The framing of a head already validated (by the HTTP/1.1 parser, or built by the
        /// HTTP/2 side with a checked length or chunked).
        func framing(version: HTTPVersion) -> RequestBodyFraming {
            switch validate(version: version) {
            case .success(let framing): return framing
            case .failure: return .none
            }
        }
    }

    /// 1 to 18 ASCII digits (no sign, no spaces, no list): at most about 10^18 bytes.
    static func decimal(_ text: String) -> Int? {
        text.withUTF8Bytes(decimal)
    }

    static func decimal(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var value = 0
        var digits = 0
        for byte in bytes {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte), digits < 18 else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
            digits += 1
        }
        return digits > 0 ? value : nil
    }
}
