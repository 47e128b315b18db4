import HTTPFieldText
import NIOCore
import NIOHTTP1

/// A client request's fields. From an HTTP/1.1 connection: the head's bytes as received and
/// where each field's name and value lie in them, so that forwarding copies those bytes and a
/// String is made only of a value something reads (an identity's field, `X-Forwarded-For` from
/// a trusted peer). From HTTP/2: the fields its side decoded.
struct ClientFields: Equatable {
    /// Where a field's name and value (without the whitespace around it) lie in the head.
    struct Location: Equatable {
        let name: Range<Int>
        let value: Range<Int>
    }

    private enum Storage: Equatable {
        case received(head: ByteBuffer, fields: [Location])
        case decoded(HTTPHeaders)
    }

    private let storage: Storage

    /// - Parameters:
    ///   - head: the head's bytes, checked by HTTP1HeadParser.
    ///   - fields: where each field lies in `head` (offsets from its reader index).
    init(received head: ByteBuffer, fields: [Location]) {
        storage = .received(head: head, fields: fields)
    }

    init(_ headers: HTTPHeaders) {
        storage = .decoded(headers)
    }

    /// Whether `forEach` hands the value bytes a client sent; otherwise it hands the UTF-8 of
    /// Strings (FieldText's, whose escapes stand for bytes no UTF-8 holds).
    var valuesAreReceivedBytes: Bool {
        if case .received = storage { return true }
        return false
    }

    var count: Int {
        switch storage {
        case .received(_, let fields): return fields.count
        case .decoded(let headers): return headers.count
        }
    }

    /// How many bytes the received head takes (0 for decoded fields): its fields' lines take no
    /// more.
    var byteCount: Int {
        if case .received(let head, _) = storage { return head.readableBytes }
        return 0
    }

    /// Each field's name and value bytes, in order.
    func forEach(_ body: (_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Void) {
        switch storage {
        case .received(let head, let fields):
            head.withUnsafeReadableBytes { bytes in
                for field in fields {
                    body(UnsafeRawBufferPointer(rebasing: bytes[field.name]), UnsafeRawBufferPointer(rebasing: bytes[field.value]))
                }
            }
        case .decoded(let headers):
            for (name, value) in headers {
                name.withUTF8Bytes { name in
                    value.withUTF8Bytes { value in body(name, value) }
                }
            }
        }
    }

    /// A value `forEach` handed over, as the String the head's fields hold it as.
    func text(_ value: UnsafeRawBufferPointer) -> String {
        valuesAreReceivedBytes ? FieldText.string(value) : String(decoding: value, as: UTF8.self)
    }

    /// The values of the fields called `name` (in any case), in order.
    func values(named name: String) -> [String] {
        var values: [String] = []
        name.withUTF8Bytes { name in
            forEach { fieldName, value in
                if ASCIIText.equalsIgnoringCase(fieldName, name) { values.append(text(value)) }
            }
        }
        return values
    }

    /// The fields as general headers (made for what needs them: not on a proxied request's way).
    var headers: HTTPHeaders {
        switch storage {
        case .decoded(let headers):
            return headers
        case .received(_, let fields):
            var headers = HTTPHeaders()
            headers.reserveCapacity(fields.count)
            forEach { name, value in headers.add(name: String(decoding: name, as: UTF8.self), value: FieldText.string(value)) }
            return headers
        }
    }
}
