import HTTPFieldText
import NIOCore
import NIOHTTP1

/// The request an upstream sees, derived from the client's in one pass over its fields as it is
/// written: hop-by-hop fields (and those `Connection` names) gone, the body framed as the gateway
/// decided (`framing`: one `Content-Length`, or `Transfer-Encoding: chunked`, or neither), `Host`
/// set to the authority the request was routed by, the `X-Forwarded-*` trio and `X-Real-IP` set
/// (what a client claims about the original scheme, host and address is replaced, never
/// trusted; other claims a proxy would make go on only from a trusted one: ClientClaims), and
/// the path overrides `X-Original-URL` and `X-Rewrite-URL` dropped. A field whose
/// name is one of those, or one the route's identity is read from, to an upstream that takes `_`
/// for `-` (`X_Forwarded_For` beside `X-Forwarded-For`) is not forwarded either: such an upstream
/// would read it as the field the gateway set or counted by.
///
/// An HTTP/1.1 upstream's bytes are written straight from the client's fields, with no second
/// set of headers built between; an HTTP/2 upstream's codec is handed a head (`head`).
struct UpstreamRequest {
    let method: HTTPMethod
    /// The upstream's base path, then the client's target in normal form.
    let uri: String
    let framing: RequestBodyFraming
    /// A WebSocket handshake: it asks the upstream for `websocket` again, with the gateway's own
    /// `Upgrade` and `Connection` (never the client's list).
    let opensTunnel: Bool
    private let clientFields: ClientFields
    private let options: ConnectionOptions
    private let host: String
    private let forwardedHost: String?
    private let peerAddress: String
    /// The client's address as resolved (trusted proxies walked): the one per-IP limits count.
    private let clientAddress: String
    private let fromTrustedProxy: Bool
    private let scheme: String
    /// An HTTP/2 upstream is told again that the client reads trailers (the one `TE` HTTP/2 allows).
    private let asksForTrailers: Bool
    /// The fields the route's identity is read from (lower case).
    private let identityFields: [String]

    /// - Parameters:
    ///   - authority: the request's authority (absolute-form target, else `Host`).
    ///   - uri: the client's target in normal form.
    ///   - clientAddress: the client's address as resolved (the peer's when nil).
    ///   - fromTrustedProxy: whether the peer is a trusted proxy (ClientClaims).
    // Made once per request, in ProxyHandler.begin: inlined there, the references it takes are
    // moved into the value; called, each was retained for the call and released after it.
    @inline(__always)
    init(
        client request: ClientRequest,
        options: ConnectionOptions,
        authority: String?,
        framing: RequestBodyFraming,
        uri: String,
        peerAddress: String,
        clientAddress: String? = nil,
        fromTrustedProxy: Bool = false,
        scheme: String,
        upstream: borrowing GatewayConfig.Upstream,
        opensTunnel: Bool = false,
        identityFields: [String] = []
    ) {
        method = request.method
        self.uri = upstream.basePath.isEmpty ? uri : upstream.basePath + uri
        self.framing = framing
        self.opensTunnel = opensTunnel
        clientFields = request.headers
        self.options = options
        // Not `??`: where this initializer is not inlined, its autoclosure captured a copy of the
        // whole upstream configuration per request.
        if let authority { host = authority } else { host = upstream.authority }
        forwardedHost = authority
        self.peerAddress = peerAddress
        self.clientAddress = clientAddress ?? peerAddress
        self.fromTrustedProxy = fromTrustedProxy
        self.scheme = scheme
        asksForTrailers = upstream.wireProtocol == .h2 && options.acceptsTrailers
        self.identityFields = identityFields
    }

    /// Every field the upstream sees, in the order written: the client's that go on, then the
    /// gateway's own.
    func forEachField(_ body: (_ name: String, _ value: String) -> Void) {
        let clientForwardedFor = forEachClientField { name, value in
            body(String(decoding: name, as: UTF8.self), clientFields.text(value))
        }
        forEachOwnField(clientForwardedFor: clientForwardedFor) { name, value, _ in body(name, value) }
    }

    /// The client's fields that go on, in order, as `clientFields` hands them.
    /// - Returns: the values of the client's `X-Forwarded-For` fields, joined, if it sent any.
    private func forEachClientField(_ body: (_ name: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) -> Void) -> String? {
        var forwardedFor: String?
        // The closure reads these, not `self`: capturing `self`, the optimiser copied the whole
        // request into its context, retaining and releasing each of its Strings and arrays.
        let clientFields = clientFields, options = options, identityFields = identityFields, fromTrustedProxy = fromTrustedProxy
        clientFields.forEach { name, value in
            let forwarded: Bool
            if options.removes(name) || Self.aliasesIdentityField(name, of: identityFields)
                || ClientClaims.isWithheld(name, fromTrustedProxy: fromTrustedProxy)
            {
                forwarded = false
            } else {
                switch name.count {
                case 4: forwarded = !ASCIIText.equals(name, lowercased: "host")
                // The gateway answers `Expect: 100-continue` itself, once the limiter has admitted.
                case 6: forwarded = !ASCIIText.equals(name, lowercased: "expect")
                case 9: forwarded = !ASCIIText.namesSameField(name, "x-real-ip")
                // Older Symfony and Zend upstreams route by these instead of the request line: a
                // path the router never matched.
                case 13: forwarded = !ASCIIText.namesSameField(name, "x-rewrite-url")
                case 14:
                    forwarded = !ASCIIText.namesSameField(name, "content-length") && !ASCIIText.namesSameField(name, "x-original-url")
                case 15 where ASCIIText.equals(name, lowercased: "x-forwarded-for"):
                    let text = clientFields.text(value)
                    forwardedFor = forwardedFor.map { "\($0), \(text)" } ?? text
                    forwarded = false
                case 15: forwarded = !ASCIIText.namesSameField(name, "x-forwarded-for")
                case 16: forwarded = !ASCIIText.namesSameField(name, "x-forwarded-host")
                case 17:
                    forwarded = !ASCIIText.namesSameField(name, "transfer-encoding")
                        && !ASCIIText.namesSameField(name, "x-forwarded-proto")
                default: forwarded = true
                }
            }
            if forwarded { body(name, value) }
        }
        return forwardedFor
    }

    /// The gateway's own fields, in order.
    /// - Parameter body: also told whether the value holds bytes a client sent (FieldText's).
    private func forEachOwnField(clientForwardedFor: String?, _ body: (_ name: String, _ value: String, _ received: Bool) -> Void) {
        body("host", host, false)
        switch framing {
        case .none: break
        case .length(let length): body("content-length", String(length), false)
        case .chunked: body("transfer-encoding", "chunked", false)
        }
        if let clientForwardedFor {
            body("x-forwarded-for", "\(clientForwardedFor), \(peerAddress)", true)
        } else {
            body("x-forwarded-for", peerAddress, false)
        }
        body("x-real-ip", clientAddress, false)
        body("x-forwarded-proto", scheme, false)
        if let forwardedHost { body("x-forwarded-host", forwardedHost, false) }
        if asksForTrailers { body("te", "trailers", false) }
        if opensTunnel {
            body("connection", "upgrade", false)
            body("upgrade", WebSocketUpgrade.protocolName, false)
        }
    }

    /// The most bytes `forEachOwnField`'s lines take, the empty line after them included: at
    /// most 178 for the names, separators, fixed values and a length's 20 digits, then the values
    /// that vary (a value written through FieldText takes at most its UTF-8's length).
    private func ownFieldsRoom(clientForwardedFor: String?) -> Int {
        237 + host.utf8.count + (clientForwardedFor?.utf8.count ?? 0) + peerAddress.utf8.count + clientAddress.utf8.count
            + scheme.utf8.count + (forwardedHost?.utf8.count ?? 0)
    }

    /// The request's part as the upstream gets it: a trailer section keeps only the fields
    /// that decide nothing. An upstream that merges trailers into the head (some do, and CGI-style
    /// ones cannot tell them apart) would otherwise read a framing or routing field (a method it
    /// names for itself among them), the gateway's own `X-Forwarded-*`, or the identity the
    /// limiter counted by from bytes nobody checked; under any name it reads as one of those
    /// (`_` for `-` included).
    func onward(_ part: HTTPClientRequestPart) -> HTTPClientRequestPart {
        guard case .end(let trailers?) = part else { return part }
        var kept = HTTPHeaders()
        for (name, value) in trailers where forwardsTrailer(name) {
            kept.add(name: name, value: value)
        }
        return .end(kept.isEmpty ? nil : kept)
    }

    private func forwardsTrailer(_ name: String) -> Bool {
        name.withUTF8Bytes { name in
            if ForwardedHeaders.isHopByHop(name) || options.removes(name) || ClientClaims.isWithheld(name, fromTrustedProxy: false)
                || MethodOverride.isOverrideField(name)
            {
                return false
            }
            for decided in Self.fieldsDecidedByTheHead where ASCIIText.namesSameField(name, decided) {
                return false
            }
            return !identityFields.contains { field in field.withUTF8Bytes { ASCIIText.namesSameField(name, $0) } }
        }
    }

    /// Fields whose meaning is settled once the head is read: framing, routing, what the
    /// gateway answers itself, what it sets, and the path overrides it never forwards.
    private static let fieldsDecidedByTheHead: [StaticString] = [
        "host", "content-length", "transfer-encoding", "expect", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
        "x-real-ip", "x-rewrite-url", "x-original-url",
    ]

    /// Whether `name` is not one of the identity's fields but is read as one where `_` is `-`.
    private static func aliasesIdentityField(_ name: UnsafeRawBufferPointer, of identityFields: [String]) -> Bool {
        identityFields.contains { field in
            field.withUTF8Bytes { field in ASCIIText.namesSameField(name, field) && !ASCIIText.equals(name, lowercased: field) }
        }
    }

    /// The request line, the fields and the empty line, as HTTP/1.1: the client's fields and
    /// the gateway's own into room reserved once each. A field received over HTTP/1.1 goes on as
    /// the bytes that came (`name: value`, the whitespace around the value dropped), which take
    /// no more room than their line did, and one byte more where no space followed the colon.
    func write(into buffer: inout ByteBuffer) {
        HTTP1Writer.writeRequestLine(method: method, uri: uri, into: &buffer)
        var clientForwardedFor: String?
        if clientFields.valuesAreReceivedBytes {
            HTTP1Writer.write(into: &buffer, atMost: clientFields.byteCount + clientFields.count) { out in
                clientForwardedFor = forEachClientField { name, value in out.appendField(name, value) }
            }
        } else {
            clientForwardedFor = forEachClientField { name, value in HTTP1Writer.writeField(name, fieldText: value, into: &buffer) }
        }
        HTTP1Writer.write(into: &buffer, atMost: ownFieldsRoom(clientForwardedFor: clientForwardedFor)) { out in
            forEachOwnField(clientForwardedFor: clientForwardedFor) { name, value, received in
                name.withUTF8Bytes { name in
                    value.withUTF8Bytes { value in
                        if received { out.appendField(name, fieldText: value) } else { out.appendField(name, value) }
                    }
                }
            }
            out.append("\r\n")
        }
    }

    /// The head an HTTP/2 upstream's codec encodes.
    var head: HTTPRequestHead {
        var headers = HTTPHeaders()
        headers.reserveCapacity(clientFields.count + 5)
        forEachField { name, value in headers.add(name: name, value: value) }
        return HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: headers)
    }
}
