@testable import Gateway
import NIOCore
import NIOHTTP1
import XCTest

/// Every transition of a client connection's exchanges, without sockets, on a clock of our own.
final class ExchangeStateMachineTests: XCTestCase {
    private final class FakeExchange {}
    private final class FakeConnection {}
    private typealias Machine = ExchangeStateMachine<FakeExchange, FakeConnection>

    private func at(_ seconds: Int64) -> NIODeadline { .uptimeNanoseconds(UInt64(1_000_000_000 + seconds * 1_000_000_000)) }
    private let idle = TimeAmount.seconds(60)
    private let send = TimeAmount.seconds(10)

    private func head(_ uri: String = "/", headers: [(String, String)] = []) -> ClientRequestPart {
        .head(ClientRequest(HTTPRequestHead(version: .http1_1, method: .POST, uri: uri, headers: HTTPHeaders(headers))))
    }

    private let body = ClientRequestPart.body(ByteBuffer(string: "hello"))

    /// A machine whose exchange `exchange` is admitted and proxying on `connection`.
    private func proxying(
        _ exchange: FakeExchange,
        _ connection: FakeConnection,
        requestEnded: Bool,
        reused: Bool = false
    ) -> Machine {
        var machine = Machine(isStream: false, now: at(0))
        guard case .begin = machine.receive(head(), now: at(0)) else {
            XCTFail("an idle connection begins its first request")
            return machine
        }
        machine.exchangeBegan(exchange, expectsContinue: false, keepAlive: true, closeAfterResponse: false)
        if requestEnded { _ = machine.receive(.end(nil), now: at(0)) }
        _ = machine.verdict(for: exchange, admitted: true)
        _ = machine.upstreamAcquired(connection, for: exchange, reused: reused)
        return machine
    }

    func testTheNextExchangeStartsFromNothingOfTheLastOnesProgress() {
        let first = FakeExchange()
        var machine = proxying(first, FakeConnection(), requestEnded: true, reused: true)
        XCTAssertEqual(machine.progress?.mayRetryOnFreshConnection, true)
        machine.responseClockStarted(at: at(5))
        XCTAssertEqual(machine.responseHead(upstreamKeepAlive: true, closeDelimited: true), true, "a close-delimited answer closes")
        XCTAssertNotNil(machine.responseEnded())
        XCTAssertNil(machine.progress, "no exchange in flight, no progress")
        guard case .idle = machine.becomeIdle(now: at(6)) else { return XCTFail() }
        guard case .begin = machine.receive(head(), now: at(7)) else { return XCTFail() }
        let second = FakeExchange()
        machine.exchangeBegan(second, expectsContinue: true, keepAlive: true, closeAfterResponse: false)
        let progress = machine.progress
        XCTAssertEqual(progress?.requestEnded, false)
        XCTAssertEqual(progress?.responseStarted, false)
        XCTAssertEqual(progress?.closeAfterResponse, false)
        XCTAssertEqual(progress?.mayRetryOnFreshConnection, false)
        XCTAssertNil(progress?.responseDeadline)
        guard case .acquireUpstream(sendContinue: true) = machine.verdict(for: second, admitted: true) else {
            return XCTFail("its own Expect, not the last exchange's ended request, decides")
        }
    }

    func testARequestGoesThroughLimitingConnectingAndProxyingBackToIdle() {
        var machine = Machine(isStream: false, now: at(0))
        let exchange = FakeExchange()
        let connection = FakeConnection()
        guard case .begin = machine.receive(head(), now: at(0)) else { return XCTFail() }
        machine.exchangeBegan(exchange, expectsContinue: false, keepAlive: true, closeAfterResponse: false)
        guard case .buffer(let buffered, _) = machine.receive(body, now: at(1)), buffered === exchange else {
            return XCTFail("a body waits with its exchange for the verdict")
        }
        XCTAssertFalse(machine.readsAllowed(clientWritable: true, upstreamWritable: true), "the body waits unread")
        guard case .acquireUpstream(sendContinue: false) = machine.verdict(for: exchange, admitted: true) else { return XCTFail() }
        guard case .startProxying(keepBodyForRetry: false, requestEnded: false) =
            machine.upstreamAcquired(connection, for: exchange, reused: false)
        else { return XCTFail() }
        XCTAssertTrue(machine.readsAllowed(clientWritable: true, upstreamWritable: true))
        XCTAssertFalse(machine.readsAllowed(clientWritable: true, upstreamWritable: false), "the upstream cannot take more")
        guard case .forward(let to, .end, let whole, keepForRetry: false) = machine.receive(.end(nil), now: at(2)), to === connection,
            whole === exchange
        else {
            return XCTFail("the end goes upstream and starts the response clock")
        }
        XCTAssertEqual(machine.responseHead(upstreamKeepAlive: true, closeDelimited: false), false)
        let finish = machine.responseEnded()
        XCTAssertTrue(finish?.exchange === exchange && finish?.connection === connection)
        XCTAssertEqual(finish?.reusable, true)
        XCTAssertEqual(finish?.closeClient, false)
        guard case .idle = machine.becomeIdle(now: at(3)) else { return XCTFail() }
        XCTAssertTrue(machine.isIdle)
    }

    /// An upstream may answer before it has read the whole body (a 401 or 413 to an upload).
    /// The client connection then closes after the answer, and the answer's head says so:
    /// written as keep-alive, the client sent its next request into a connection that closed
    /// without answering it.
    func testAnAnswerThatComesBeforeTheRequestsEndSaysTheConnectionCloses() {
        var early = proxying(FakeExchange(), FakeConnection(), requestEnded: false)
        XCTAssertEqual(early.responseHead(upstreamKeepAlive: true, closeDelimited: false), true, "the head says close")
        _ = early.receive(.end(nil), now: at(1))
        let finish = early.responseEnded()
        XCTAssertEqual(finish?.closeClient, true, "closed as its head said, though the body ended meanwhile")

        var onTime = proxying(FakeExchange(), FakeConnection(), requestEnded: true)
        XCTAssertEqual(onTime.responseHead(upstreamKeepAlive: true, closeDelimited: false), false)
        XCTAssertEqual(onTime.responseEnded()?.closeClient, false)

        // An HTTP/2 stream ends on its own; its connection is not the request's to close.
        var stream = Machine(isStream: true, now: at(0))
        let exchange = FakeExchange()
        _ = stream.receive(head(), now: at(0))
        stream.exchangeBegan(exchange, expectsContinue: false, keepAlive: true, closeAfterResponse: false)
        _ = stream.verdict(for: exchange, admitted: true)
        _ = stream.upstreamAcquired(FakeConnection(), for: exchange, reused: false)
        XCTAssertEqual(stream.responseHead(upstreamKeepAlive: true, closeDelimited: false), false)
    }

    func testReadsAskOnlyForTheWritabilityTheStateDependsOn() {
        var asked: [String] = []
        func client(_ writable: Bool) -> Bool {
            asked.append("client")
            return writable
        }
        func upstream(_ writable: Bool) -> Bool {
            asked.append("upstream")
            return writable
        }
        let idle = Machine(isStream: false, now: at(0))
        XCTAssertFalse(idle.readsAllowed(clientWritable: client(false), upstreamWritable: upstream(true)))
        XCTAssertEqual(asked, ["client"], "an idle connection waits only for its client")
        asked = []
        let sending = proxying(FakeExchange(), FakeConnection(), requestEnded: false)
        XCTAssertFalse(sending.readsAllowed(clientWritable: client(true), upstreamWritable: upstream(false)))
        XCTAssertEqual(asked, ["upstream"], "a body on its way waits only for its upstream")
        asked = []
        let answered = proxying(FakeExchange(), FakeConnection(), requestEnded: true)
        XCTAssertTrue(answered.readsAllowed(clientWritable: client(true), upstreamWritable: upstream(false)))
        XCTAssertEqual(asked, ["client"], "after a whole request only a pipelined one can come: it waits only for its client")
        // The same answers as the handler reads them, the writabilities left for it to ask.
        XCTAssertEqual(idle.readGate, .clientWritable)
        XCTAssertEqual(sending.readGate, .upstreamWritable)
        XCTAssertEqual(answered.readGate, .clientWritable)
        var closed = Machine(isStream: false, now: at(0))
        _ = closed.clientClosed()
        XCTAssertEqual(closed.readGate, .closed)
    }

    /// A client that pipelines requests and reads none of the answers: each read brought more
    /// requests while one was in flight, and every one was answered into a queue of unsent bytes
    /// that grew as long as the client kept sending (hundreds of MiB within seconds).
    func testAClientThatTakesNoAnswersGetsNoMoreRequestsReadOrServed() {
        var machine = Machine(isStream: false, now: at(0))
        let first = FakeExchange()
        _ = machine.receive(head("/1"), now: at(0))
        machine.exchangeBegan(first, expectsContinue: false, keepAlive: true, closeAfterResponse: false)
        _ = machine.receive(.end(nil), now: at(0))
        XCTAssertFalse(machine.readsAllowed(clientWritable: false, upstreamWritable: true), "no more requests are read while limiting")
        XCTAssertTrue(machine.readsAllowed(clientWritable: true, upstreamWritable: true))
        _ = machine.verdict(for: first, admitted: true)
        XCTAssertFalse(machine.readsAllowed(clientWritable: false, upstreamWritable: true), "nor while connecting")
        _ = machine.upstreamAcquired(FakeConnection(), for: first, reused: false)
        XCTAssertFalse(machine.readsAllowed(clientWritable: false, upstreamWritable: true), "nor while the answer comes")
        // Requests already read wait for the client too.
        for part in [head("/2"), body, .end(nil), head("/3")] {
            guard case .queued = machine.receive(part, now: at(0)) else { return XCTFail("queued behind the first") }
        }
        _ = machine.responseHead(upstreamKeepAlive: true, closeDelimited: false)
        _ = machine.responseEnded()
        guard case .idle = machine.becomeIdle(now: at(1)) else { return XCTFail() }
        XCTAssertNil(machine.nextQueuedPart(clientWritable: false), "the next request waits for the client to take its answers")
        XCTAssertTrue(machine.hasQueuedParts)
        XCTAssertFalse(machine.readsAllowed(clientWritable: true, upstreamWritable: true))
        guard case .begin(let second)? = machine.nextQueuedPart(clientWritable: true), second.head.uri == "/2" else { return XCTFail() }
        machine.exchangeBegan(FakeExchange(), expectsContinue: false, keepAlive: true, closeAfterResponse: false)
        guard case .buffer? = machine.nextQueuedPart(clientWritable: false), case .buffer? = machine.nextQueuedPart(clientWritable: false)
        else { return XCTFail("the body of a request begun goes on with it whatever the client does") }
        XCTAssertNil(machine.nextQueuedPart(clientWritable: true), "the third waits for the second")
        // A client that never takes its answers is closed by the send timeout.
        let deadline = machine.clientWritabilityChanged(writable: false, now: at(2), sendTimeout: send)
        XCTAssertEqual(deadline, at(12))
        guard case .closeClient = machine.deadlineReached(now: at(12), idleTimeout: idle, sendTimeout: send) else {
            return XCTFail()
        }
        XCTAssertFalse(machine.hasQueuedParts)
    }

    func testPipelinedRequestsWaitAndAreReplayedInOrder() {
        var machine = Machine(isStream: false, now: at(0))
        let first = FakeExchange()
        _ = machine.receive(head("/1"), now: at(0))
        machine.exchangeBegan(first, expectsContinue: false, keepAlive: true, closeAfterResponse: false)
        _ = machine.receive(.end(nil), now: at(0))
        for part in [head("/2"), body, .end(nil)] {
            guard case .queued = machine.receive(part, now: at(0)) else { return XCTFail("queued behind the first") }
        }
        XCTAssertFalse(machine.readsAllowed(clientWritable: true, upstreamWritable: true), "reads stop while a request waits")
        XCTAssertNil(machine.nextQueuedPart(clientWritable: true), "nothing is replayed while the first is in flight")
        _ = machine.verdict(for: first, admitted: false)
        guard case .becomeIdle = machine.answeredLocally(requestEnded: true, bodyWithheld: false, close: false, now: at(1)) else {
            return XCTFail()
        }
        guard case .idle = machine.becomeIdle(now: at(1)) else { return XCTFail() }
        guard case .begin(let second)? = machine.nextQueuedPart(clientWritable: true), second.head.uri == "/2" else { return XCTFail() }
        let exchange = FakeExchange()
        machine.exchangeBegan(exchange, expectsContinue: false, keepAlive: true, closeAfterResponse: false)
        guard case .buffer? = machine.nextQueuedPart(clientWritable: true), case .buffer? = machine.nextQueuedPart(clientWritable: true) else { return XCTFail() }
        XCTAssertNil(machine.nextQueuedPart(clientWritable: true))
        XCTAssertFalse(machine.hasQueuedParts)
    }

    /// 0ff6282: a client connection that errored mid-exchange marked itself closed before the
    /// close that followed could release anything; its slot and upstream connection leaked.
    func testAClientGoneMidExchangeGivesBackWhatItsExchangeHolds() {
        let exchange = FakeExchange()
        let connection = FakeConnection()
        var machine = proxying(exchange, connection, requestEnded: false)
        let held = machine.clientClosed()
        XCTAssertTrue(held.exchange === exchange && held.connection === connection)
        let again = machine.clientClosed()
        XCTAssertNil(again.exchange, "given back once")
        XCTAssertNil(again.connection)
        // A verdict or a connection arriving afterwards is stale: the shell gives it back.
        guard case .stale = machine.verdict(for: exchange, admitted: true),
            case .stale = machine.upstreamAcquired(FakeConnection(), for: exchange, reused: false)
        else { return XCTFail() }
        // While limiting, only the exchange's slots are held.
        var limiting = Machine(isStream: false, now: at(0))
        _ = limiting.receive(head(), now: at(0))
        limiting.exchangeBegan(exchange, expectsContinue: false, keepAlive: true, closeAfterResponse: false)
        let slots = limiting.clientClosed()
        XCTAssertTrue(slots.exchange === exchange)
        XCTAssertNil(slots.connection)
    }

    func testADeniedRequestsBodyIsDiscardedWithinItsBudget() {
        var machine = Machine(isStream: false, now: at(0))
        let exchange = FakeExchange()
        _ = machine.receive(head(), now: at(0))
        machine.exchangeBegan(exchange, expectsContinue: false, keepAlive: true, closeAfterResponse: false)
        guard case .deny = machine.verdict(for: exchange, admitted: false) else { return XCTFail() }
        guard case .discard = machine.answeredLocally(requestEnded: false, bodyWithheld: false, close: false, now: at(1)) else {
            return XCTFail()
        }
        guard case .none = machine.receive(body, now: at(1)), case .discardEnded = machine.receive(.end(nil), now: at(1)) else {
            return XCTFail("a small body is read and dropped, then the next request is served")
        }
        var large = Machine(isStream: false, now: at(0))
        _ = large.receive(head(), now: at(0))
        large.exchangeBegan(exchange, expectsContinue: false, keepAlive: true, closeAfterResponse: false)
        _ = large.answeredLocally(requestEnded: false, bodyWithheld: false, close: false, now: at(1))
        let chunk = ClientRequestPart.body(ByteBuffer(repeating: 0, count: Machine.discardBudget / 2 + 1))
        guard case .none = large.receive(chunk, now: at(1)), case .close = large.receive(chunk, now: at(1)) else {
            return XCTFail("past the budget, the connection closes")
        }
    }

    /// A local answer that leaves a body to discard says the connection closes when the body's
    /// length is past the discard budget: the connection would close once the budget is spent,
    /// after an answer that said it stays open. A chunked body's end may come within the
    /// budget (then the next request is served), so its answer keeps the connection open.
    func testALocalAnswerSaysTheConnectionClosesWhenTheBodyLeftOutrunsTheBudget() {
        let machine = Machine(isStream: false, now: at(0))
        func closes(_ unread: RequestBodyFraming?) -> Bool {
            machine.localAnswerCloses(keepAlive: true, bodyWithheld: false, mustClose: false, unreadBody: unread)
        }
        XCTAssertFalse(closes(nil), "the request ended: nothing to discard")
        XCTAssertFalse(closes(RequestBodyFraming.none))
        XCTAssertFalse(closes(.length(Machine.discardBudget)), "a body the budget holds is read and dropped")
        XCTAssertTrue(closes(.length(Machine.discardBudget + 1)))
        XCTAssertFalse(closes(.chunked), "its end may come within the budget")
        let stream = Machine(isStream: true, now: at(0))
        XCTAssertFalse(
            stream.localAnswerCloses(keepAlive: true, bodyWithheld: false, mustClose: false, unreadBody: .chunked),
            "an HTTP/2 stream's answer ends the stream, never the connection"
        )
    }

    func testContinueIsSentOnlyToAnAdmittedRequestWaitingForIt() {
        var machine = Machine(isStream: false, now: at(0))
        let exchange = FakeExchange()
        _ = machine.receive(head(headers: [("Expect", "100-continue")]), now: at(0))
        machine.exchangeBegan(exchange, expectsContinue: true, keepAlive: true, closeAfterResponse: false)
        guard case .acquireUpstream(sendContinue: true) = machine.verdict(for: exchange, admitted: true) else { return XCTFail() }
        XCTAssertEqual(machine.progress?.continueSent, true)
        // A denied client that never got 100 Continue may never send its body: close.
        XCTAssertTrue(machine.localAnswerCloses(keepAlive: true, bodyWithheld: true, mustClose: false))
        guard case .close = machine.answeredLocally(requestEnded: false, bodyWithheld: true, close: true, now: at(1)) else {
            return XCTFail()
        }
    }

    func testAReusedConnectionClosedBeforeAnsweringIsRetriedOnce() {
        let exchange = FakeExchange()
        var machine = proxying(exchange, FakeConnection(), requestEnded: true, reused: true)
        XCTAssertEqual(machine.progress?.mayRetryOnFreshConnection, true)
        guard case .retry(let retried) = machine.upstreamClosed(), retried === exchange else { return XCTFail() }
        guard case .startProxying(keepBodyForRetry: false, requestEnded: true) =
            machine.upstreamAcquired(FakeConnection(), for: exchange, reused: false)
        else { return XCTFail("a fresh connection is not retried again") }
        guard case .fail = machine.upstreamClosed() else { return XCTFail("nothing answered: 502") }

        var answered = proxying(exchange, FakeConnection(), requestEnded: true, reused: true)
        XCTAssertTrue(answered.responseBytesArrived())
        _ = answered.responseHead(upstreamKeepAlive: true, closeDelimited: false)
        guard case .abort = answered.upstreamClosed() else { return XCTFail("half an answer went out: cut the client") }
    }

    func testARequestEndingAfterItsConnectionWasLeasedIsRetriedOnceWhole() {
        // A request without a body: its head leases a reused connection, its end comes after.
        let exchange = FakeExchange()
        var machine = proxying(exchange, FakeConnection(), requestEnded: false, reused: true)
        XCTAssertEqual(machine.progress?.mayRetryOnFreshConnection, false, "not whole yet")
        guard case .forward(_, .end, let whole, keepForRetry: true) = machine.receive(.end(nil), now: at(1)), whole === exchange else {
            return XCTFail("the end is kept, to be sent again with the head")
        }
        guard case .retry(let retried) = machine.upstreamClosed(), retried === exchange else {
            return XCTFail("the connection the upstream had closed: sent again on a fresh one")
        }

        // Body bytes sent on their way, not kept: the request cannot be sent again.
        var streamed = proxying(exchange, FakeConnection(), requestEnded: false, reused: true)
        guard case .forward(_, _, _, keepForRetry: false) = streamed.receive(body, now: at(1)) else { return XCTFail() }
        guard case .forward(_, .end, _, keepForRetry: false) = streamed.receive(.end(nil), now: at(2)) else { return XCTFail() }
        guard case .fail = streamed.upstreamClosed() else { return XCTFail("nothing answered: 502") }

        // Body bytes that waited for the connection go with the head, not kept (the request is
        // not whole yet): sent again, the request would lack them. (Found by ExchangeSequence:
        // the end was kept and sent again with the head alone.)
        for reused in [true, false] {
            var waited = Machine(isStream: false, now: at(0))
            guard case .begin = waited.receive(head(), now: at(0)) else { return XCTFail() }
            waited.exchangeBegan(exchange, expectsContinue: false, keepAlive: true, closeAfterResponse: false)
            guard case .buffer = waited.receive(body, now: at(0)) else { return XCTFail("the body waits for the verdict") }
            _ = waited.verdict(for: exchange, admitted: true)
            guard case .startProxying(keepBodyForRetry: false, requestEnded: false) =
                waited.upstreamAcquired(FakeConnection(), for: exchange, reused: reused, retryIfBroken: !reused)
            else { return XCTFail() }
            guard case .forward(_, .end, _, keepForRetry: false) = waited.receive(.end(nil), now: at(1)) else {
                return XCTFail("nothing is kept for a retry that could not be whole")
            }
            guard case .fail = waited.upstreamClosed() else { return XCTFail("reused \(reused): 502, not the head and end alone again") }
        }

        // An answer that started before the end (an early refusal): not sent again either.
        var answered = proxying(exchange, FakeConnection(), requestEnded: false, reused: true)
        XCTAssertFalse(answered.responseBytesArrived())
        guard case .forward(_, .end, _, keepForRetry: false) = answered.receive(.end(nil), now: at(1)) else { return XCTFail() }
        guard case .fail = answered.upstreamClosed() else { return XCTFail() }
    }

    func testAFreshConnectionThatBreaksIsRetriedOnlyWhenAllowed() {
        let exchange = FakeExchange()
        var machine = proxying(exchange, FakeConnection(), requestEnded: true)
        guard case .fail = machine.upstreamClosed() else { return XCTFail("a fresh connection, no retry allowed: 502") }

        // A reused connection the upstream had closed: retried, on a fresh connection.
        var retryable = proxying(exchange, FakeConnection(), requestEnded: true, reused: true)
        guard case .retry = retryable.upstreamClosed() else { return XCTFail() }
        guard case .startProxying(keepBodyForRetry: true, requestEnded: true) =
            retryable.upstreamAcquired(FakeConnection(), for: exchange, reused: false, retryIfBroken: true)
        else { return XCTFail("an idempotent request with another target keeps its body to be sent again") }
        guard case .retry(let retried) = retryable.upstreamClosed(), retried === exchange else { return XCTFail() }
    }

    func testUnreadableBytesAreAnsweredAfterTheRequestsBeforeThem() {
        var machine = Machine(isStream: false, now: at(0))
        guard case .answer(nil, nil) = machine.requestFailed(.headTooLarge) else { return XCTFail("idle: answered at once") }

        let exchange = FakeExchange()
        let connection = FakeConnection()
        var inFlight = proxying(exchange, connection, requestEnded: true)
        guard case .deferred = inFlight.requestFailed(.malformed("x")) else { return XCTFail() }
        XCTAssertFalse(inFlight.readsAllowed(clientWritable: true, upstreamWritable: true), "nothing more is read")
        _ = inFlight.responseHead(upstreamKeepAlive: true, closeDelimited: false)
        _ = inFlight.responseEnded()
        guard case .idle = inFlight.becomeIdle(now: at(1)) else { return XCTFail() }
        XCTAssertEqual(inFlight.afterQueue(), .malformed("x"))
        XCTAssertNil(inFlight.afterQueue())

        // Broken bytes inside the body of the request in flight: that exchange is abandoned.
        var midBody = proxying(exchange, connection, requestEnded: false)
        guard case .answer(let abandoned?, let closed?) = midBody.requestFailed(.malformed("chunk")),
            abandoned === exchange, closed === connection
        else { return XCTFail() }
    }

    func testDeadlinesOnAnInjectedClock() {
        // Idle: the connection closes once idle_timeout passes without a request.
        var idleMachine = Machine(isStream: false, now: at(0))
        guard case .rearm(let wake) = idleMachine.deadlineReached(now: at(30), idleTimeout: idle, sendTimeout: send), wake == at(60) else {
            return XCTFail()
        }
        guard case .closeClient(nil, nil) = idleMachine.deadlineReached(now: at(60), idleTimeout: idle, sendTimeout: send) else {
            return XCTFail()
        }

        // The upstream must start answering by the response deadline.
        let exchange = FakeExchange()
        let connection = FakeConnection()
        var waiting = proxying(exchange, connection, requestEnded: true)
        waiting.responseClockStarted(at: at(5))
        guard case .rearm(at(5)) = waiting.deadlineReached(now: at(1), idleTimeout: idle, sendTimeout: send),
            case .upstreamTimedOut(let timedOut, let closing, next: nil) = waiting.deadlineReached(now: at(5), idleTimeout: idle, sendTimeout: send),
            timedOut === exchange, closing === connection
        else { return XCTFail() }

        // A client that stopped reading meanwhile keeps its send deadline past the upstream's
        // timeout. (Found by ExchangeSequence: the timer was armed next for the idle timeout, so
        // such a client was closed up to a minute late.)
        var stalledWhileWaiting = proxying(exchange, connection, requestEnded: true)
        stalledWhileWaiting.responseClockStarted(at: at(5))
        XCTAssertEqual(stalledWhileWaiting.clientWritabilityChanged(writable: false, now: at(1), sendTimeout: send), at(11))
        guard case .upstreamTimedOut(_, _, next: at(11)) = stalledWhileWaiting.deadlineReached(now: at(5), idleTimeout: idle, sendTimeout: send) else {
            return XCTFail("the send deadline is armed again with the upstream's timeout")
        }

        // A client that takes nothing for send_timeout is closed, with what its exchange holds.
        var stalled = proxying(exchange, connection, requestEnded: true)
        _ = stalled.responseHead(upstreamKeepAlive: true, closeDelimited: false)
        XCTAssertEqual(stalled.clientWritabilityChanged(writable: false, now: at(2), sendTimeout: send), at(12))
        XCTAssertNil(stalled.clientWritabilityChanged(writable: false, now: at(3), sendTimeout: send), "one stall, one deadline")
        guard case .rearm(at(12)) = stalled.deadlineReached(now: at(11), idleTimeout: idle, sendTimeout: send) else { return XCTFail() }
        guard case .closeClient(let held?, let heldConnection?) = stalled.deadlineReached(now: at(12), idleTimeout: idle, sendTimeout: send),
            held === exchange, heldConnection === connection
        else { return XCTFail() }

        // Progress (the client read enough to be writable again) ends the stall.
        var progressing = proxying(exchange, connection, requestEnded: true)
        _ = progressing.responseHead(upstreamKeepAlive: true, closeDelimited: false)
        _ = progressing.clientWritabilityChanged(writable: false, now: at(2), sendTimeout: send)
        _ = progressing.clientWritabilityChanged(writable: true, now: at(8), sendTimeout: send)
        guard case .none = progressing.deadlineReached(now: at(13), idleTimeout: idle, sendTimeout: send) else { return XCTFail() }
    }

    func testDrainAndStreams() {
        var idleMachine = Machine(isStream: false, now: at(0))
        XCTAssertTrue(idleMachine.drain(), "idle: close at once")
        let exchange = FakeExchange()
        var busy = proxying(exchange, FakeConnection(), requestEnded: true)
        XCTAssertFalse(busy.drain(), "the exchange in flight finishes first")
        _ = busy.responseHead(upstreamKeepAlive: true, closeDelimited: false)
        XCTAssertEqual(busy.responseEnded()?.closeClient, true, "then the connection closes")

        var stream = Machine(isStream: true, now: at(0))
        _ = stream.receive(head(), now: at(0))
        guard case .streamDone = stream.becomeIdle(now: at(1)) else { return XCTFail("a stream carries one request") }

        var upgrade = Machine(isStream: false, now: at(0))
        _ = upgrade.receive(head(), now: at(0))
        upgrade.exchangeBegan(exchange, expectsContinue: false, keepAlive: true, closeAfterResponse: true)
        _ = upgrade.receive(.end(nil), now: at(0))
        _ = upgrade.verdict(for: exchange, admitted: true)
        _ = upgrade.upstreamAcquired(FakeConnection(), for: exchange, reused: false)
        XCTAssertEqual(upgrade.responseHead(upstreamKeepAlive: true, closeDelimited: false), true)
    }

    /// 928c9a5: an HTTP/2 stream whose proxy had answered (and reset the stream) on the head
    /// still handed it the request's end. Whatever arrives after the close is ignored.
    func testPartsAfterTheCloseAreIgnored() {
        var stream = Machine(isStream: true, now: at(0))
        _ = stream.receive(head(), now: at(0))
        guard case .close = stream.answeredLocally(requestEnded: true, bodyWithheld: false, close: true, now: at(0)) else {
            return XCTFail()
        }
        stream.closing()
        for part in [body, .end(nil), head()] {
            guard case .none = stream.receive(part, now: at(1)) else { return XCTFail("\(part) after the close") }
        }
        XCTAssertNil(stream.responseEnded())
        guard case .none = stream.upstreamClosed(), case .none = stream.requestFailed(.headTooLarge) else { return XCTFail() }
    }

    func testAClientThatReadsNoAnswersSendsNoMoreRequests() {
        let machine = Machine(isStream: false, now: at(0))
        XCTAssertTrue(machine.readsAllowed(clientWritable: true, upstreamWritable: true))
        XCTAssertFalse(machine.readsAllowed(clientWritable: false, upstreamWritable: true))
    }

    // MARK: WebSocket tunnels

    /// A machine whose WebSocket handshake is admitted, whole, and sent on `connection`.
    private func handshakeSent(_ exchange: FakeExchange, _ connection: FakeConnection) -> Machine {
        var machine = Machine(isStream: false, now: at(0))
        _ = machine.receive(head(), now: at(0))
        machine.exchangeBegan(exchange, expectsContinue: false, keepAlive: true, closeAfterResponse: true, opensTunnel: true)
        _ = machine.receive(.end(nil), now: at(0))
        _ = machine.verdict(for: exchange, admitted: true)
        _ = machine.upstreamAcquired(connection, for: exchange, reused: false)
        return machine
    }

    func testBytesAfterAHandshakeWaitForTheUpstreams101AndReadsStopMeanwhile() {
        let exchange = FakeExchange()
        let connection = FakeConnection()
        var machine = Machine(isStream: false, now: at(0))
        _ = machine.receive(head(), now: at(0))
        machine.exchangeBegan(exchange, expectsContinue: false, keepAlive: true, closeAfterResponse: true, opensTunnel: true)
        _ = machine.receive(.end(nil), now: at(0))
        XCTAssertFalse(machine.readsAllowed(clientWritable: true, upstreamWritable: true), "nothing more is read before the verdict")
        guard case .held = machine.receiveTunnelBytes(ByteBuffer(string: "early"), now: at(0)) else {
            return XCTFail("bytes that came with the handshake are held")
        }
        _ = machine.verdict(for: exchange, admitted: true)
        _ = machine.upstreamAcquired(connection, for: exchange, reused: false)
        XCTAssertFalse(machine.readsAllowed(clientWritable: true, upstreamWritable: true), "nor before the 101")
        guard let opened = machine.tunnelOpened(idleTimeout: .seconds(30), now: at(1)) else { return XCTFail() }
        XCTAssertTrue(opened.connection === connection)
        XCTAssertEqual(opened.held.map { String(buffer: $0) }, ["early"], "the held bytes go first")
        XCTAssertTrue(machine.readsAllowed(clientWritable: true, upstreamWritable: true))
        XCTAssertFalse(machine.readsAllowed(clientWritable: true, upstreamWritable: false), "backpressure from the upstream")
        guard case .forward(let to) = machine.receiveTunnelBytes(ByteBuffer(string: "more"), now: at(2)), to === connection else {
            return XCTFail("into the open tunnel")
        }
        XCTAssertTrue(machine.upstreamTunnelBytes(now: at(3)))
    }

    func testNoTunnelOpensForARequestThatDidNotAskOrWasRefused() {
        let exchange = FakeExchange()
        let connection = FakeConnection()
        var plain = proxying(exchange, connection, requestEnded: true)
        XCTAssertNil(plain.tunnelOpened(idleTimeout: .seconds(30), now: at(1)), "a 101 nobody asked for opens nothing")

        var refused = handshakeSent(exchange, connection)
        XCTAssertEqual(refused.responseHead(upstreamKeepAlive: true, closeDelimited: false), true, "a refusal closes the client after it")
        XCTAssertEqual(refused.responseEnded()?.reusable, false, "an upstream that refused a handshake is not asked again")
        guard case .close = refused.receiveTunnelBytes(ByteBuffer(string: "x"), now: at(2)) else {
            return XCTFail("no tunnel will open: the bytes are no request either")
        }

        var idle = Machine(isStream: false, now: at(0))
        guard case .close = idle.receiveTunnelBytes(ByteBuffer(string: "x"), now: at(0)) else {
            return XCTFail("a handshake answered by the gateway itself leaves nothing to hold bytes for")
        }
    }

    func testATunnelHoldsItsExchangeUntilEitherSideClosesOrItFallsSilent() {
        let exchange = FakeExchange()
        let connection = FakeConnection()
        var machine = handshakeSent(exchange, connection)
        _ = machine.tunnelOpened(idleTimeout: .seconds(30), now: at(0))
        XCTAssertFalse(machine.drain(), "a drain waits for the tunnel")
        guard case .rearm(let deadline) = machine.deadlineReached(now: at(20), idleTimeout: idle, sendTimeout: send) else {
            return XCTFail()
        }
        XCTAssertEqual(deadline, at(30))
        _ = machine.upstreamTunnelBytes(now: at(25))
        guard case .rearm(let later) = machine.deadlineReached(now: at(30), idleTimeout: idle, sendTimeout: send) else {
            return XCTFail("bytes either way keep it open")
        }
        XCTAssertEqual(later, at(55))
        guard case .closeClient(let held, let heldConnection) = machine.deadlineReached(now: at(55), idleTimeout: idle, sendTimeout: send),
            held === exchange, heldConnection === connection
        else { return XCTFail("silent for its idle timeout: closed, its slots and upstream given back") }

        var upstreamGone = handshakeSent(exchange, connection)
        _ = upstreamGone.tunnelOpened(idleTimeout: .seconds(30), now: at(0))
        guard case .endTunnel(let ended) = upstreamGone.upstreamClosed(), ended === exchange else { return XCTFail() }

        var clientGone = handshakeSent(exchange, connection)
        _ = clientGone.tunnelOpened(idleTimeout: .seconds(30), now: at(0))
        let given = clientGone.clientClosed()
        XCTAssertTrue(given.exchange === exchange && given.connection === connection)
    }
}

extension ExchangeStateMachine {
    /// Whether more of the request may be read now, asking each writability only where the
    /// gate depends on it, as ProxyHandler does: the tests' way to ask `readGate`.
    func readsAllowed(clientWritable: @autoclosure () -> Bool, upstreamWritable: @autoclosure () -> Bool) -> Bool {
        switch readGate {
        case .closed: return false
        case .clientWritable: return clientWritable()
        case .upstreamWritable: return upstreamWritable()
        }
    }
}
