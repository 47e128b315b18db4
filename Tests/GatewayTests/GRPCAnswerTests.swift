import NIOHTTP1
import XCTest

@testable import Gateway

/// The gateway's own answers to gRPC requests, in gRPC's terms.
final class GRPCAnswerTests: XCTestCase {
    func testEachLocalAnswerHasItsGRPCStatus() {
        XCTAssertEqual(LocalResponse.badGateway().grpcStatus, 14, "UNAVAILABLE")
        XCTAssertEqual(LocalResponse.upstreamBusy().grpcStatus, 14, "UNAVAILABLE")
        XCTAssertEqual(LocalResponse.gatewayTimeout().grpcStatus, 4, "DEADLINE_EXCEEDED")
        XCTAssertEqual(LocalResponse.unauthorized().grpcStatus, 16, "UNAUTHENTICATED")
        XCTAssertEqual(LocalResponse.notFound().grpcStatus, 12, "UNIMPLEMENTED")
        XCTAssertEqual(LocalResponse.badRequest("x").grpcStatus, 3, "INVALID_ARGUMENT")
        let trailers = LocalResponse.gatewayTimeout().grpcTrailers()
        XCTAssertEqual(trailers["grpc-status"], ["4"])
        XCTAssertEqual(trailers["grpc-message"], ["The upstream service did not answer in time."])
        XCTAssertEqual(LocalResponse.gatewayTimeout().grpcHead().status, .ok)
    }

    func testOnlyHTTP2RequestsOfGRPCsContentTypeAreGRPC() {
        func head(_ version: HTTPVersion, _ type: String) -> ClientRequest {
            ClientRequest(HTTPRequestHead(version: version, method: .POST, uri: "/s/M", headers: ["Content-Type": type]))
        }
        XCTAssertTrue(LocalResponse.isGRPC(head(.http2, "application/grpc")))
        XCTAssertTrue(LocalResponse.isGRPC(head(.http2, "application/grpc+proto")))
        XCTAssertFalse(LocalResponse.isGRPC(head(.http1_1, "application/grpc")))
        XCTAssertFalse(LocalResponse.isGRPC(head(.http2, "application/json")))
    }

    func testGRPCMessagesArePercentEncoded() {
        XCTAssertEqual(LocalResponse.percentEncoded("50% off, \u{e9}t\u{e9}\n"), "50%25 off, %C3%A9t%C3%A9%0A")
    }
}
