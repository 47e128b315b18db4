import NIOHTTP1

/// A request to turn its HTTP/1.1 connection into a WebSocket (RFC 6455, 4.1): the one upgrade
/// the gateway tunnels. Its handshake is routed and limited like any request; once the upstream
/// answers 101, the connection carries WebSocket frames, which the application on the other end
/// reads, never as requests the gateway would have had to route.
///
/// Other upgrades are forwarded as plain requests (their `Upgrade` field dropped) and the
/// connection closes after the answer: h2c above all, which would turn the tunnel into an HTTP/2
/// connection whose every request reached the upstream unrouted and unlimited.
enum WebSocketUpgrade {
    /// The protocol named upstream: the gateway's own value, whatever else the client listed.
    static let protocolName = "websocket"

    /// `GET` over HTTP/1.1 with `Upgrade` naming `websocket` and `Connection` naming `upgrade`
    /// (or the head an HTTP/2 extended CONNECT became: HTTP/2 clients cannot send those fields).
    static func isRequested(_ request: ClientRequest) -> Bool {
        guard request.method.isGET, request.version == .http1_1 || request.version.major == 2 else { return false }
        return request.fields.options.upgradeListsWebSocket && request.fields.options.connectionListsUpgrade
    }

    /// Whether a request opens a tunnel once answered 101: a handshake, which has no body
    /// (RFC 6455, 4.1; a request with one is no WebSocket's). The one rule the parser (which
    /// then reads no HTTP after the request) and the proxy (which asks the upstream) both apply.
    static func opensTunnel(_ request: ClientRequest, framing: RequestBodyFraming) -> Bool {
        (framing == .none || framing == .length(0)) && isRequested(request)
    }

    /// Whether an upstream's 101 switched to WebSocket, and nothing else.
    static func isAccepted(_ head: HTTPResponseHead) -> Bool {
        guard head.status == .switchingProtocols else { return false }
        let upgrades = head.headers["upgrade"]
        return upgrades.count == 1 && upgrades[0].listsToken(protocolName) && !upgrades[0].contains(",")
    }
}
