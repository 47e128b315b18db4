@testable import Gateway
import NIOCore
import NIOHTTP1

/// What ProxyHandler does with the machine's answers, done the same way.
extension ExchangeSequence {
    func becomeIdle() {
        switch machine.becomeIdle(now: now) {
        case .close: closeConnection()
        case .idle:
            if machine.isStream { violation("a stream served a second request") }
            // A handshake answered without a tunnel: what follows is not HTTP.
            if parserInTunnel { return closeConnection() }
            armTimer(at: machine.lastClientActivity + idleTimeout)
            serveQueuedRequests()
        case .streamDone:
            if !machine.isStream { violation("a connection ended as a stream") }
            clientOpen = false
        }
    }

    func serveQueuedRequests() {
        guard !replaying else { return }
        replaying = true
        while let action = machine.nextQueuedPart(clientWritable: clientWritable) { perform(action) }
        replaying = false
        if machine.afterQueue() != nil { answerUnreadable() }
    }

    func failExchange(_ exchange: Exchange) {
        exchange.releaseSlots()
        answerLocally(for: exchange)
    }

    func answerLocally(for exchange: Exchange) {
        let progress = machine.progress
        answerLocally(
            exchange.request, expectsContinue: exchange.expectsContinue, keepAlive: progress?.keepAlive ?? true,
            requestEnded: progress?.requestEnded ?? true, continueSent: progress?.continueSent ?? false,
            mustClose: progress?.closeAfterResponse ?? false
        )
    }

    func answerLocally(
        _ request: Int, expectsContinue: Bool, keepAlive: Bool, requestEnded: Bool, continueSent: Bool = false, mustClose: Bool = false
    ) {
        guard clientOpen else { return }
        let bodyWithheld = !requestEnded && expectsContinue && !continueSent
        let close = machine.localAnswerCloses(
            keepAlive: keepAlive, bodyWithheld: bodyWithheld, mustClose: mustClose, unreadBody: requestEnded ? nil : framings[request]
        )
        answered(request)
        switch machine.answeredLocally(requestEnded: requestEnded, bodyWithheld: bodyWithheld, close: close, now: now) {
        case .becomeIdle: becomeIdle()
        case .close: closeConnection()
        case .discard:
            discarded = 0
            armTimer(at: machine.lastClientActivity + idleTimeout)
        }
    }

    func answerUnreadable() {
        if !responseInProgress { answered(-1) }
        closeConnection()
    }

    func closeConnection() {
        machine.closing()
        clientOpen = false
    }

    func release(_ exchange: Exchange?, _ connection: Connection?) {
        exchange?.releaseSlots()
        if let connection { close(connection) }
    }

    func close(_ connection: Connection) {
        connection.isOpen = false
        connection.pooled = false
    }
}
