import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2

/// Translates one HTTP/2 stream to the HTTP/1-shaped parts ProxyHandler speaks, and back.
///
/// NIO ships such a codec; this one exists for the response side, which runs once per request
/// and dominated the HTTP/2 profile. NIO's copies the response head into a second header list,
/// lower-cases every name and marks every field indexable, so each response value (remaining
/// counts, reset times, upstream ids) was searched for and inserted into the connection's HPACK
/// dynamic table, which then filled with values never sent again and lengthened every later
/// search. Here the head goes straight into the header block, indexed only where values repeat
/// (HTTP2ResponseFields), and a small response's body and end leave as one DATA frame.
final class HTTP2StreamCodec: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTP2Frame.FramePayload

    /// A request header block without the pseudo-headers every request must carry.
    struct MalformedRequest: Error, CustomStringConvertible {
        let missing: String
        var description: String { "HTTP/2 request without \(missing)" }
    }

    private var headSeen = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .headers(let block):
            if headSeen {
                // A second header block is the request's trailers (NIO's state machine has
                // already checked that it ends the stream).
                context.fireChannelRead(Self.wrapInboundOut(.end(HTTPHeaders(regularHeadersOf: block.headers))))
                return
            }
            headSeen = true
            do {
                let head = try Self.requestHead(block.headers, endStream: block.endStream)
                context.fireChannelRead(Self.wrapInboundOut(.head(head)))
                if block.endStream { context.fireChannelRead(Self.wrapInboundOut(.end(nil))) }
            } catch {
                context.fireErrorCaught(error)
            }
        case .data(let data):
            guard case .byteBuffer(let buffer) = data.data else { return }
            if buffer.readableBytes > 0 { context.fireChannelRead(Self.wrapInboundOut(.body(buffer))) }
            if data.endStream { context.fireChannelRead(Self.wrapInboundOut(.end(nil))) }
        default:
            // Window updates, priority and resets are the HTTP/2 handler's business.
            break
        }
    }

    /// The last body part written, held back until the next write or flush: when the next write
    /// is the end, the two leave as one DATA frame that ends the stream (a small response is then
    /// two frames, HEADERS and DATA, not three).
    private var heldBody: IOData?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let part = Self.unwrapOutboundIn(data)
        if case .end(nil) = part, let body = heldBody {
            heldBody = nil
            context.write(Self.wrapOutboundOut(.data(.init(data: body, endStream: true))), promise: promise)
            return
        }
        writeHeldBody(context: context)
        if case .body(let body) = part, promise == nil {
            heldBody = body
            return
        }
        let payload: HTTP2Frame.FramePayload
        switch part {
        case .head(let head):
            var block = HPACKHeaders()
            block.reserveCapacity(head.headers.count + 1)
            // Common statuses are full matches in HPACK's static table: indexed, one byte.
            block.add(name: ":status", value: String(head.status.code), indexing: .indexable)
            HTTP2ResponseFields.append(head.headers, to: &block)
            payload = .headers(.init(headers: block))
        case .body(let body):
            payload = .data(.init(data: body))
        case .end(let trailers?):
            var block = HPACKHeaders()
            HTTP2ResponseFields.append(trailers, to: &block)
            payload = .headers(.init(headers: block, endStream: true))
        case .end(nil):
            payload = .data(.init(data: .byteBuffer(ByteBuffer()), endStream: true))
        }
        context.write(Self.wrapOutboundOut(payload), promise: promise)
    }

    func flush(context: ChannelHandlerContext) {
        writeHeldBody(context: context)
        context.flush()
    }

    private func writeHeldBody(context: ChannelHandlerContext) {
        guard let body = heldBody else { return }
        heldBody = nil
        context.write(Self.wrapOutboundOut(.data(.init(data: body))), promise: nil)
    }

    /// The request as HTTP/1 sees it: `:authority` becomes `Host` (unless the client sent one),
    /// and a body without a length is marked chunked for the upstream hop.
    static func requestHead(_ block: HPACKHeaders, endStream: Bool) throws -> HTTPRequestHead {
        var method: String?
        var path: String?
        var authority: String?
        var hasHost = false
        var hasContentLength = false
        var fields: [(String, String)] = []
        fields.reserveCapacity(block.count)
        for (name, value, _) in block {
            if name.utf8.first == UInt8(ascii: ":") {
                switch name {
                case ":method": method = value
                case ":path": path = value
                case ":authority": authority = value
                default: break
                }
                continue
            }
            if name == "host" { hasHost = true }
            if name == "content-length" { hasContentLength = true }
            fields.append((name, value))
        }
        guard let method else { throw MalformedRequest(missing: ":method") }
        guard let path else { throw MalformedRequest(missing: ":path") }
        if !hasHost, let authority { fields.insert(("host", authority), at: 0) }
        let httpMethod = HTTPMethod(rawValue: method)
        if !hasContentLength {
            if !endStream {
                // Whatever the method: a body the upstream could not delimit would be read by
                // it as the start of the next request (request smuggling).
                fields.append(("transfer-encoding", "chunked"))
            } else if httpMethod.announcesBody {
                // Some servers refuse a POST without a length (411), even an empty one.
                fields.append(("content-length", "0"))
            }
        }
        return HTTPRequestHead(
            version: HTTPVersion(major: 2, minor: 0),
            method: httpMethod,
            uri: path,
            headers: HTTPHeaders(fields)
        )
    }
}

extension HTTPHeaders {
    /// The regular fields of an HTTP/2 header block (the pseudo-headers dropped).
    init(regularHeadersOf block: HPACKHeaders) {
        var fields: [(String, String)] = []
        fields.reserveCapacity(block.count)
        for (name, value, _) in block where name.utf8.first != UInt8(ascii: ":") {
            fields.append((name, value))
        }
        self.init(fields)
    }
}

extension HTTPMethod {
    /// Methods whose requests normally carry a body: an empty one is sent with a zero length.
    fileprivate var announcesBody: Bool {
        switch self {
        case .GET, .HEAD, .DELETE, .CONNECT, .TRACE, .OPTIONS: return false
        default: return true
        }
    }
}
