@testable import Gateway
import XCTest

final class RoutingTests: XCTestCase {
    func testPathNormalisation() {
        XCTAssertEqual(RequestPath(uri: "/public/../auth/login?x=1")?.path, "/auth/login")
        XCTAssertEqual(RequestPath(uri: "/public/../auth/login?x=1")?.uri, "/auth/login?x=1")
        XCTAssertEqual(RequestPath(uri: "/%61uth/%2e%2e/auth//login")?.path, "/auth/login")
        XCTAssertEqual(RequestPath(uri: "/a/./b/")?.path, "/a/b/")
        XCTAssertEqual(RequestPath(uri: "/../../etc/passwd")?.path, "/etc/passwd")
        XCTAssertEqual(RequestPath(uri: "/files/a%2Fb")?.path, "/files/a%2Fb", "reserved escapes stay escaped")
        XCTAssertEqual(RequestPath(uri: "http://example.com/x?q")?.uri, "/x?q")
        XCTAssertEqual(RequestPath(uri: "https://example.com")?.uri, "/")
        XCTAssertEqual(RequestPath(uri: "/a#fragment")?.uri, "/a", "a fragment is not forwarded")
        XCTAssertEqual(RequestPath(uri: "/caf\u{e9}/\u{1F600}?q=\u{e9}")?.uri, "/caf\u{e9}/\u{1F600}?q=\u{e9}")
        XCTAssertEqual(RequestPath(uri: "/e\u{301}/../x")?.path, "/x", "segments are split on bytes, not characters")
        XCTAssertNil(RequestPath(uri: "*"))
        XCTAssertNil(RequestPath(uri: "/bad%zz"))
    }

    private func route(_ name: String, _ prefix: String, methods: Set<String>? = nil, host: String? = nil) -> GatewayConfig.Route {
        GatewayConfig.Route(
            name: name,
            pathPrefix: prefix,
            methods: methods,
            host: host,
            upstream: "app",
            limiters: [],
            identifier: .clientIP
        )
    }

    func testFirstMatchInFileOrderWithMethodsAndHost() {
        let router = Router(routes: [
            route("login", "/auth/", methods: ["POST"]),
            route("admin-host", "/", host: "admin.example.com"),
            route("catch-all", "/"),
        ])
        XCTAssertEqual(router.match(path: "/auth/login", method: "POST", host: "x"), 0)
        XCTAssertEqual(router.match(path: "/auth/login", method: "GET", host: "x"), 2)
        XCTAssertEqual(router.match(path: "/", method: "GET", host: "Admin.Example.com:8080"), 1)
        XCTAssertEqual(router.match(path: "/", method: "GET", host: nil), 2)
        XCTAssertNil(Router(routes: [route("api", "/api/")]).match(path: "/other", method: "GET", host: nil))
    }
}
