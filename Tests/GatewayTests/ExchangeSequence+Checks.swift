@testable import Gateway
import NIOCore
import NIOHTTP1

/// What is checked as the sequence plays, and once it is over.
extension ExchangeSequence {
    /// A part reaches an upstream connection: it must be the next part of the request that
    /// connection carries, an admitted one, on an open connection.
    func write(_ part: HTTPClientRequestPart, to connection: Connection, for exchange: Exchange) {
        guard let got = received(part) else { return violation("a part that belongs to no request: \(part)") }
        counts["part forwarded", default: 0] += 1
        if !clientOpen { violation("\(got) forwarded after the client connection closed") }
        if !connection.isOpen { violation("\(got) written to closed connection \(connection.id)") }
        if !exchange.admitted { violation("\(got) forwarded for a request never admitted") }
        guard connection.request == exchange.request else {
            return violation("\(got) written to connection \(connection.id), which carries request \(String(describing: connection.request))")
        }
        let expected: Bool
        switch (connection.received.last, got) {
        case (.head(let request)?, .body(let own, 0)), (.head(let request)?, .end(let own)):
            expected = own == request
        case (.body(let request, let index)?, .body(let own, let next)):
            expected = own == request && next == index + 1
        case (.body(let request, _)?, .end(let own)):
            expected = own == request
        default:
            expected = false
        }
        if !expected { violation("\(got) written to connection \(connection.id) after \(connection.received)") }
        connection.received.append(got)
    }

    /// Tunnel bytes reach an upstream connection: only the open tunnel's, after its handshake,
    /// each once and in the order the client sent them.
    func writeTunnelBytes(_ index: Int, to connection: Connection) {
        counts["tunnel bytes forwarded", default: 0] += 1
        guard case .tunnel(_, let open, _) = machine.state, open === connection else {
            return violation("tunnel \(index) written to connection \(connection.id) with no tunnel open on it")
        }
        let expected: Bool
        switch connection.received.last {
        case .end(let request)?: expected = request == handshake && index == 0
        case .tunnel(let last)?: expected = index == last + 1
        default: expected = false
        }
        if !expected { violation("tunnel \(index) written to connection \(connection.id) after \(connection.received)") }
        connection.received.append(.tunnel(index))
    }

    /// Once the timer has fired for everything due: no deadline passed unenforced.
    func checkDeadlinesKept() {
        guard clientOpen else { return }
        if let stalled = stalledSince, stalled + sendTimeout <= now {
            violation("a client that took nothing for the send timeout is still served")
        }
        switch machine.state {
        case .idle, .discarding:
            if machine.lastClientActivity + idleTimeout <= now { violation("an idle connection outlived its idle timeout") }
        case .proxying:
            guard let progress = machine.progress else { break }
            if !progress.requestEnded, machine.lastClientActivity + idleTimeout <= now {
                violation("a request body stalled past the idle timeout still holds its upstream connection")
            }
            if progress.requestEnded, !progress.responseStarted, let deadline = progress.responseDeadline, deadline <= now {
                violation("an upstream that did not answer in time still holds the exchange")
            }
        case .tunnel(_, _, let idleTimeout):
            if machine.lastTunnelActivity + idleTimeout <= now { violation("a silent tunnel outlived its idle timeout") }
        default:
            break
        }
    }

    func received(_ part: HTTPClientRequestPart) -> Received? {
        switch part {
        case .head:
            return nil
        case .body(.byteBuffer(let buffer)):
            let label = (buffer.getString(at: buffer.readerIndex, length: min(buffer.readableBytes, 16)) ?? "").prefix { $0 != " " }
            let numbers = label.split(separator: ":").compactMap { Int($0) }
            return numbers.count == 2 ? .body(numbers[0], numbers[1]) : nil
        case .body:
            return nil
        case .end(let trailers):
            return trailers?.first(name: "x-request").flatMap { Int($0) }.map { .end($0) }
        }
    }

    /// An answer reaches the client: each request's once, in the order the requests came.
    func answered(_ request: Int) {
        counts["answered", default: 0] += 1
        if let last = answers.last, last == -1 || (request != -1 && request <= last) {
            violation("request \(request) answered after \(answers)")
        }
        answers.append(request)
    }

    /// Once the client went: every request begun before the last was answered, no slot is still
    /// held, no connection still leased.
    func checkNothingIsHeld() {
        for request in begun.dropLast() where !answers.contains(request) {
            violation("request \(request) was never answered, and request \(begun.last!) began after it")
        }
        for exchange in exchanges where exchange.admitted && !exchange.slotsReleased {
            violation("request \(exchange.request) kept its slots after the client went")
        }
        for connection in connections where connection.isOpen && !connection.pooled {
            violation("connection \(connection.id) is still leased (with \(connection.received)) after the client went")
        }
    }

    func violation(_ text: String) {
        violations.append(text)
    }
}
