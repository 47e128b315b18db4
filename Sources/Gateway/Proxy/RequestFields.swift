import NIOCore
import NIOHTTP1

/// What routing and forwarding ask of a client's fields, read in the one pass that finds them
/// (the HTTP/1.1 parser's, on the bytes received; the HTTP/2 side's, on the head it built)
/// instead of once per question: the `Host` fields, the body's framing, the `Connection` and
/// `Upgrade` options, `Expect: 100-continue` and whether a field names another method.
struct RequestFields: Equatable {
    /// How many `Host` fields there are (more than one is refused), and the last one's value.
    private(set) var hostCount = 0
    /// The last `Host`, with whether it is a valid host[:port] (RequestAuthority).
    private(set) var receivedHost: ReceivedHost?
    var host: String? { receivedHost?.text }
    private(set) var options = ConnectionOptions()
    /// Whether the first `Expect` field is `100-continue`.
    private(set) var expectsContinue = false
    private var sawExpect = false
    /// Whether some field is one in which a client may name another method (MethodOverride).
    private(set) var namesAnotherMethod = false
    private var framingFields = RequestBodyFraming.Reader()

    init() {}

    init(_ headers: HTTPHeaders) {
        for (name, value) in headers {
            name.withUTF8Bytes { name in
                value.withUTF8Bytes { valueBytes in read(name: name, value: valueBytes, host: ReceivedHost(value)) }
            }
        }
    }

    /// Reads one field.
    /// - Parameter host: the value as the head holds it, checked as a host (asked for the `Host`
    ///   field alone).
    mutating func read(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer, host: @autoclosure () -> ReceivedHost) {
        switch name.count {
        case 4 where ASCIIText.equals(name, lowercased: "host"):
            hostCount += 1
            receivedHost = host()
        case 6 where ASCIIText.equals(name, lowercased: "expect"):
            if !sawExpect { expectsContinue = ASCIIText.equals(value, lowercased: "100-continue") }
            sawExpect = true
        default:
            if MethodOverride.isOverrideField(name) {
                namesAnotherMethod = true
                return
            }
            framingFields.read(name: name, value: value)
            options.read(name: name, value: value)
        }
    }

    /// The body's framing, or why it cannot be read (RequestBodyFraming.Reader).
    func validate(version: HTTPVersion) -> Result<RequestBodyFraming, HTTP1RequestError> {
        framingFields.validate(version: version)
    }

    /// The body's framing, of a head the HTTP/1.1 parser (or the HTTP/2 side, which builds a
    /// checked length or chunked) has validated.
    func framing(version: HTTPVersion) -> RequestBodyFraming {
        framingFields.framing(version: version)
    }
}

/// A `Host` value as the head holds it, and whether it is a valid host[:port]: made once per
/// distinct value on a connection (the HTTP/1.1 parser's `RequestRoom` keeps the last one).
struct ReceivedHost: Equatable {
    let text: String
    let isValid: Bool

    init(_ text: String) {
        self.text = text
        isValid = text.withUTF8Bytes(RequestAuthority.isValid)
    }
}

/// A client's request head with what its fields say, read where the head was.
///
/// A class: the request is handed from the parser through the state machine to the exchange,
/// and a value this size would be copied, each of its references retained, at every step.
final class ClientRequest: Equatable {
    let method: HTTPMethod
    /// The request target as received.
    let uri: String
    let version: HTTPVersion
    let headers: ClientFields
    let fields: RequestFields

    init(method: HTTPMethod, uri: String, version: HTTPVersion, headers: ClientFields, fields: RequestFields) {
        self.method = method
        self.uri = uri
        self.version = version
        self.headers = headers
        self.fields = fields
    }

    /// A head built elsewhere (HTTP/2's), its fields read in one pass.
    convenience init(_ head: HTTPRequestHead) {
        self.init(
            method: head.method, uri: head.uri, version: head.version, headers: ClientFields(head.headers), fields: RequestFields(head.headers)
        )
    }

    /// The request as a general head, made on each call (for what is not on a proxied
    /// request's way).
    var head: HTTPRequestHead {
        HTTPRequestHead(version: version, method: method, uri: uri, headers: headers.headers)
    }

    static func == (lhs: ClientRequest, rhs: ClientRequest) -> Bool {
        lhs === rhs
            || (lhs.method == rhs.method && lhs.uri == rhs.uri && lhs.version == rhs.version && lhs.headers == rhs.headers
                && lhs.fields == rhs.fields)
    }
}

/// The request parts a client connection hands the proxy.
typealias ClientRequestPart = HTTPPart<ClientRequest, ByteBuffer>
