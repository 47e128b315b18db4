// The parser is internal to the gateway's module: a fuzzing build (scripts/fuzz.sh, which adds
// `-enable-testing`) and a debug build see it; a plain release build of this target replays
// nothing.
#if canImport(Glibc)
import Glibc
#endif

#if FUZZING || DEBUG
import FuzzSupport
@testable import Gateway
import NIOCore
import NIOEmbedded
import NIOHTTP1

/// libFuzzer's entry point for what a peer's bytes reach first on an HTTP/1.1 connection: the
/// parser that cuts them into heads, body parts and ends, on the client side and the upstream's.
///
/// The oracle is the parser itself, read three ways: the same bytes fed whole, in pieces (of the
/// size the input's first byte picks) and byte by byte must come to the same heads, the same body
/// bytes, the same ends and the same refusal (its status), since where a peer's reads end is the
/// peer's choice and neither the framing decided nor the answer may depend on it. Each request head's fields must also say what a pass
/// over its Strings says (`RequestFields`, the HTTP/2 side's way). A crash, a hang, a broken bound
/// or a disagreement is a finding.
///
/// On the client's side, each whole request the gateway would forward (a path and a host it
/// accepts) is then written as it writes it upstream (`UpstreamRequest` and the upstream codec)
/// and read back by a fresh parser: exactly one request must come of it, with the method, path
/// and host routed on, the body bytes received and nothing after its end. Bytes an upstream could
/// read as a second request, or as a body the gateway did not frame, are a finding.
///
/// The first byte: bits 0-5 the size of the pieces less one, bit 7 the upstream's side (then
/// bit 6: the answers are to HEAD requests).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTP1Parser(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    guard let control = input.first else { return 0 }
    let piece = Int(control & 0x3F) + 1
    let role: HTTP1Parser.Role = control & 0x80 == 0 ? .request : .response
    let method: HTTPMethod = control & 0x40 == 0 ? .GET : .HEAD
    let bytes = Array(input.dropFirst())

    let whole = ParserReading.read(bytes, role: role, answersTo: method, piece: bytes.count)
    let inPieces = ParserReading.read(bytes, role: role, answersTo: method, piece: piece)
    precondition(whole == inPieces, "fed whole: \(whole)\nin pieces of \(piece): \(inPieces)")
    if piece > 1 {
        let byteByByte = ParserReading.read(bytes, role: role, answersTo: method, piece: 1)
        precondition(whole == byteByByte, "fed whole: \(whole)\nbyte by byte: \(byteByByte)")
    }
    if role == .request { ForwardingCheck.check(bytes) }
    return 0
}

/// Each whole request of some client bytes, forwarded and read back (see the entry point).
enum ForwardingCheck {
    private static let upstream = GatewayConfig.Upstream(
        name: "app", host: "app.internal", port: 8080, basePath: "", connectTimeoutMs: 100, responseTimeoutMs: 100, maxIdleConnections: 1
    )

    private static let upstreamAddress = try! SocketAddress(ipAddress: "192.0.2.2", port: 8080)

    static func check(_ bytes: [UInt8]) {
        var parser = HTTP1Parser(role: .request, maxHeadBytes: ParserReading.maxHeadBytes)
        var buffer = ByteBuffer(bytes: bytes)
        var request: ClientRequest?
        var body: [UInt8] = []
        while let part = try? parser.next(&buffer) {
            switch part {
            case .requestHead(let head):
                request = head
                body = []
            case .body(let bytes):
                body += bytes.readableBytesView
            case .end(let trailers):
                if let request { forward(request, body: body, trailers: trailers) }
                request = nil
            case .responseHead, .tunnel:
                return
            }
        }
    }

    /// The request as the proxy would send it, if it would (ProxyHandler.begin's checks that
    /// decide what is written: the path, the authority, the framing, a tunnel).
    private static func forward(_ request: ClientRequest, body: [UInt8], trailers: HTTPHeaders?) {
        guard let path = RequestPath(uri: request.uri) else { return }
        guard case .success(let authority) = RequestAuthority.resolve(
            request.fields, version: request.version, targetAuthority: path.authority
        ) else { return }
        let framing = request.fields.framing(version: request.version)
        let options = request.fields.options
        let opensTunnel = options.upgrade && WebSocketUpgrade.opensTunnel(request, framing: framing)
        let upstreamRequest = UpstreamRequest(
            client: request, options: options, authority: authority, framing: framing, uri: path.uri,
            peerAddress: "192.0.2.1", scheme: "http", upstream: upstream, opensTunnel: opensTunnel
        )

        let codec = HTTP1ClientCodec(maxHeadBytes: 64 * 1024)
        let channel = EmbeddedChannel(handler: codec)
        _ = try? channel.connect(to: upstreamAddress).wait()
        codec.writeHead(upstreamRequest, promise: nil)
        for start in stride(from: 0, to: body.count, by: 7) {
            codec.write(.body(.byteBuffer(ByteBuffer(bytes: body[start..<min(body.count, start + 7)]))), promise: nil)
        }
        codec.write(upstreamRequest.onward(.end(trailers)), promise: nil)
        channel.flush()
        var written = ByteBuffer()
        while var part = try? channel.readOutbound(as: ByteBuffer.self) { written.writeBuffer(&part) }
        precondition(channel.isActive, "the codec refused what the gateway framed: \(request.head)")
        _ = try? channel.finish()

        var reader = HTTP1Parser(role: .request, maxHeadBytes: 1 << 20)
        var parts: [HTTP1Parser.Part] = []
        do {
            while let part = try reader.next(&written) { parts.append(part) }
        } catch {
            preconditionFailure("what was forwarded is no request (\(error)): \(request.head)")
        }
        guard case .requestHead(let forwarded)? = parts.first else { preconditionFailure("no request forwarded: \(request.head)") }
        precondition(forwarded.method == request.method, "another method forwarded: \(forwarded.head)")
        precondition(forwarded.uri == path.uri, "another target forwarded: \(forwarded.head)")
        precondition(forwarded.fields.hostCount == 1 && forwarded.fields.host == (authority ?? upstream.authority), "another host forwarded: \(forwarded.head)")
        var forwardedBody: [UInt8] = []
        var ends = 0
        for part in parts.dropFirst() {
            switch part {
            case .body(let bytes):
                precondition(ends == 0, "bytes after the end: \(request.head)")
                forwardedBody += bytes.readableBytesView
            case .end:
                ends += 1
            case .requestHead(let extra):
                preconditionFailure("a second request forwarded: \(extra.head) after \(request.head)")
            case .responseHead, .tunnel:
                preconditionFailure("bytes read as no request: \(request.head)")
            }
        }
        precondition(ends == 1 || (opensTunnel && ends <= 1), "the forwarded request does not end: \(request.head)")
        precondition(forwardedBody == body, "another body forwarded: \(request.head)")
    }
}

/// What a parser makes of some bytes, in a form two readings can be compared in: consecutive
/// body (or tunnel) parts joined, since how bytes split across reads is what may differ.
enum ParserReading {
    enum Read: Equatable {
        case head(String)
        case body([UInt8])
        case end([String])
        case tunnel([UInt8])
        /// The answer it comes to (its status): which of a malformed head's faults is seen first
        /// may depend on where the bytes were cut, not whether and how the head is refused.
        case error(Int)
        /// What the parser says when the peer closes after the last byte.
        case closed(String)
    }

    static let maxHeadBytes = 512

    static func read(_ bytes: [UInt8], role: HTTP1Parser.Role, answersTo method: HTTPMethod, piece: Int) -> [Read] {
        var parser = HTTP1Parser(role: role, maxHeadBytes: maxHeadBytes)
        if role == .response { parser.expectResponse(to: method) }
        var out: [Read] = []
        var offset = 0
        repeat {
            var chunk = ByteBuffer(bytes: bytes[offset..<min(bytes.count, offset + max(piece, 1))])
            offset += chunk.readableBytes
            do {
                while let part = try parser.next(&chunk) {
                    record(part, into: &out)
                    if case .end = part, role == .response { parser.expectResponse(to: method) }
                }
            } catch {
                out.append(.error(status(of: error)))
                return out
            }
        } while offset < bytes.count
        do {
            out.append(.closed(try parser.finish().map { "\($0)" } ?? "nothing"))
        } catch {
            out.append(.closed("\(error)"))
        }
        return out
    }

    private static func record(_ part: HTTP1Parser.Part, into out: inout [Read]) {
        switch part {
        case .requestHead(let request):
            let head = request.head
            precondition(request.fields == RequestFields(head.headers), "the parser's pass and the Strings' disagree on \(head)")
            out.append(.head("\(head.method.rawValue) \(head.uri) \(head.version) \(fields(head.headers))"))
        case .responseHead(let head):
            out.append(.head("\(head.status.code) \(head.version) \(fields(head.head.headers))"))
        case .body(let body):
            if case .body(let previous) = out.last {
                out[out.count - 1] = .body(previous + Array(body.readableBytesView))
            } else {
                out.append(.body(Array(body.readableBytesView)))
            }
        case .end(let trailers):
            out.append(.end(trailers.map(fields) ?? []))
        case .tunnel(let bytes):
            if case .tunnel(let previous) = out.last {
                out[out.count - 1] = .tunnel(previous + Array(bytes.readableBytesView))
            } else {
                out.append(.tunnel(Array(bytes.readableBytesView)))
            }
        }
    }

    private static func status(of error: HTTP1RequestError) -> Int {
        switch error {
        case .headTooLarge: return 431
        case .malformed: return 400
        case .unsupportedTransferCoding: return 501
        case .unsupportedVersion: return 505
        }
    }

    private static func fields(_ headers: HTTPHeaders) -> [String] {
        headers.map { "\($0.name)=\(Array($0.value.utf8))" }
    }
}
#endif

#if !FUZZING
/// Without libFuzzer (an ordinary build): replays the inputs named on the command line.
@main
enum ReplayInputs {
    static func main() {
        #if DEBUG
        replayInputs(CommandLine.arguments.dropFirst(), through: fuzzHTTP1Parser)
        #else
        print("http1-parser-fuzzer replays inputs in a debug build only (the parser is internal)")
        exit(2)
        #endif
    }
}
#endif
