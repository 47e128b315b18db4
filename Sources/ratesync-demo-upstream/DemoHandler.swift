import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

final class ManagedAtomicCounter: Sendable {
    private let value = NIOLockedValueBox(0)
    func next() -> Int { value.withLockedValue { $0 += 1; return $0 } }
}

final class DemoHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private static let chunkSize = 64 * 1024

    private let connectionID: Int
    private var requestNumber = 0
    private var head: HTTPRequestHead?
    private var receivedBytes = 0
    /// Bytes of a `?bytes=N` body still to send, while waiting for the socket to drain.
    private var remainingToSend = 0
    private var streamingKeepAlive = true
    private var context: ChannelHandlerContext?

    init(connectionID: Int) {
        self.connectionID = connectionID
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch Self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            receivedBytes = 0
            requestNumber += 1
        case .body(let buffer):
            receivedBytes += buffer.readableBytes
        case .end:
            guard let head else { return }
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let components = URLComponents(string: head.uri)
        let query = Dictionary(
            (components?.queryItems ?? []).map { ($0.name, $0.value ?? "") },
            uniquingKeysWith: { $1 }
        )
        if query["drop"] == "1" {
            context.close(promise: nil)
            return
        }
        if let delay = query["delay_ms"].flatMap(Int64.init), delay > 0 {
            let received = receivedBytes
            context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(delay)) {
                self.answer(head, query: query, received: received, context: context)
            }
            return
        }
        answer(head, query: query, received: receivedBytes, context: context)
    }

    private func answer(_ head: HTTPRequestHead, query: [String: String], received: Int, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "x-upstream-connection", value: String(connectionID))
        headers.add(name: "x-upstream-request", value: String(requestNumber))
        if !head.isKeepAlive { headers.add(name: "connection", value: "close") }

        if let size = query["bytes"].flatMap(Int.init), size >= 0 {
            headers.add(name: "content-type", value: "application/octet-stream")
            headers.add(name: "content-length", value: String(size))
            context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: .ok, headers: headers))), promise: nil)
            remainingToSend = size
            streamingKeepAlive = head.isKeepAlive
            sendMore(context: context)
            return
        }

        let body: String
        if head.uri.hasPrefix("/bench") {
            headers.add(name: "content-type", value: "text/plain")
            body = "ok\n"
        } else {
            headers.add(name: "content-type", value: "application/json")
            body = Self.echo(head, received: received)
        }
        headers.add(name: "content-length", value: String(body.utf8.count))
        let status = query["status"].flatMap(Int.init).map { HTTPResponseStatus(statusCode: $0) } ?? .ok
        context.write(Self.wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        if head.method != .HEAD {
            var buffer = context.channel.allocator.buffer(capacity: body.utf8.count)
            buffer.writeString(body)
            context.write(Self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        finish(keepAlive: head.isKeepAlive, context: context)
    }

    /// Writes the next chunks of a `?bytes=N` body while the socket can take them.
    private func sendMore(context: ChannelHandlerContext) {
        while remainingToSend > 0 && context.channel.isWritable {
            let size = min(Self.chunkSize, remainingToSend)
            var buffer = context.channel.allocator.buffer(capacity: size)
            buffer.writeRepeatingByte(UInt8(ascii: "x"), count: size)
            remainingToSend -= size
            context.writeAndFlush(Self.wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        }
        if remainingToSend == 0 && head != nil {
            head = nil
            finish(keepAlive: streamingKeepAlive, context: context)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && remainingToSend > 0 { sendMore(context: context) }
        context.fireChannelWritabilityChanged()
    }

    private func finish(keepAlive: Bool, context: ChannelHandlerContext) {
        head = nil
        context.writeAndFlush(Self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            if !keepAlive { context.close(promise: nil) }
        }
    }

    private static func echo(_ head: HTTPRequestHead, received: Int) -> String {
        var headers: [String: String] = [:]
        for (name, value) in head.headers {
            let key = name.lowercased()
            headers[key] = headers[key].map { "\($0), \(value)" } ?? value
        }
        let object: [String: Any] = [
            "method": head.method.rawValue,
            "uri": head.uri,
            "version": "\(head.version.major).\(head.version.minor)",
            "headers": headers,
            "received_bytes": received,
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}
