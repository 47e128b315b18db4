@testable import Gateway
import NIOHTTP1
import XCTest

final class RoutingTests: XCTestCase {
    func testPathNormalisation() {
        XCTAssertEqual(RequestPath(uri: "/public/../auth/login?x=1")?.path, "/auth/login")
        XCTAssertEqual(RequestPath(uri: "/public/../auth/login?x=1")?.uri, "/auth/login?x=1")
        XCTAssertEqual(RequestPath(uri: "/%61uth/%2e%2e/auth//login")?.path, "/auth/login")
        XCTAssertEqual(RequestPath(uri: "/a/./b/")?.path, "/a/b/")
        XCTAssertEqual(RequestPath(uri: "/../../etc/passwd")?.path, "/etc/passwd")
        XCTAssertEqual(RequestPath(uri: "/files/a%3Fb")?.path, "/files/a%3Fb", "reserved escapes stay escaped")
        XCTAssertEqual(RequestPath(uri: "http://example.com/x?q")?.uri, "/x?q")
        XCTAssertEqual(RequestPath(uri: "http://example.com/x?q")?.authority, "example.com")
        XCTAssertEqual(RequestPath(uri: "HTTP://Example.com:81?q")?.uri, "/?q")
        XCTAssertEqual(RequestPath(uri: "HTTP://Example.com:81?q")?.authority, "Example.com:81")
        XCTAssertEqual(RequestPath(uri: "https://example.com")?.uri, "/")
        XCTAssertEqual(RequestPath(uri: "/a#fragment")?.uri, "/a", "a fragment is not forwarded")
        XCTAssertEqual(RequestPath(uri: "/a?k=z#&k=victim")?.uri, "/a?k=z", "nor is one after a query")
        XCTAssertEqual(RequestPath(uri: "/a#x?k=z")?.uri, "/a", "a `?` in a fragment begins no query")
        XCTAssertEqual(RequestPath(uri: "http://h/a?k=z#?k=v")?.uri, "/a?k=z")
        XCTAssertEqual(RequestPath(uri: "/caf\u{e9}/\u{1F600}?q=\u{e9}")?.uri, "/caf\u{e9}/\u{1F600}?q=\u{e9}")
        XCTAssertEqual(RequestPath(uri: "/e\u{301}/../x")?.path, "/x", "segments are split on bytes, not characters")
        XCTAssertNil(RequestPath(uri: "*"))
        XCTAssertNil(RequestPath(uri: "/bad%zz"))
    }

    func testRoutesMatchPathsWithoutTheirSegmentParameters() {
        // As a servlet container reads them: Tomcat routes both as /auth/login.
        let parameters = RequestPath(uri: "/auth;jsessionid=1/login?a=b;c")
        XCTAssertEqual(parameters?.routingPath, "/auth/login")
        XCTAssertEqual(parameters?.uri, "/auth;jsessionid=1/login?a=b;c", "forwarded as sent")
        let traversal = RequestPath(uri: "/public/..;/auth/login")
        XCTAssertEqual(traversal?.routingPath, "/auth/login")
        XCTAssertEqual(traversal?.path, "/public/..;/auth/login")
        XCTAssertEqual(RequestPath(uri: "/x/;a/y;")?.routingPath, "/x/y")
        XCTAssertEqual(RequestPath(uri: "/a?b;c")?.routingPath, "/a", "a query's `;` is no path parameter")
        XCTAssertEqual(RequestPath(uri: "/plain/path")?.routingPath, "/plain/path")
    }

    func testEncodedSlashesBackslashesAndNULAreRefused() {
        // Frameworks disagree on what `/auth%2flogin` is (Starlette routes it as /auth/login):
        // no route could be matched as every upstream reads it.
        for uri in ["/auth%2flogin", "/auth%2Flogin", "/auth%5clogin", "/auth%5Clogin", "/auth\\login", "/a%00b", "/x/..%2f..%2fauth/login"] {
            XCTAssertNil(RequestPath(uri: uri), uri)
        }
        XCTAssertEqual(RequestPath(uri: "/q?next=%2Fauth%2Flogin")?.uri, "/q?next=%2Fauth%2Flogin", "the query is not a path")
    }

    func testTargetsInNormalFormReadAsTheGeneralNormalisationReadsThem() {
        // Origin-form targets already normal take a shortcut; the same bytes behind an absolute
        // form's authority take the general path. Both must give the same path and query, for
        // every short string of the bytes normalisation cares about.
        let alphabet: [String] = ["/", ".", "a", "?", "%2F", "%61", "#", "\\", "%", ";"]
        var targets: [String] = [""]
        for _ in 0..<4 {
            targets = targets.flatMap { target in alphabet.map { target + $0 } }
        }
        var shortcuts = 0
        for target in targets.map({ "/" + $0 }) {
            let origin = RequestPath(uri: target)
            let absolute = RequestPath(uri: "http://example.com" + target)
            XCTAssertEqual(origin?.path, absolute?.path, target)
            XCTAssertEqual(origin?.query, absolute?.query, target)
            XCTAssertEqual(origin?.routingPath, absolute?.routingPath, target)
            if let origin, origin.uri == target { shortcuts += 1 }
        }
        XCTAssertGreaterThan(shortcuts, 100)
    }

    func testAuthorityRules() {
        func resolve(_ version: HTTPVersion, _ hosts: [String], targetAuthority: Substring?) -> Result<String?, RequestAuthority.Problem> {
            let fields = RequestFields(HTTPHeaders(hosts.map { ("Host", $0) } + [("Accept", "*/*")]))
            return RequestAuthority.resolve(fields, version: version, targetAuthority: targetAuthority)
        }
        XCTAssertEqual(resolve(.http1_1, ["a.example:8080"], targetAuthority: nil), .success("a.example:8080"))
        XCTAssertEqual(resolve(.http1_1, [], targetAuthority: nil), .failure(.missingHost))
        XCTAssertEqual(resolve(.http1_0, [], targetAuthority: nil), .success(nil))
        XCTAssertEqual(resolve(HTTPVersion(major: 2, minor: 0), [], targetAuthority: nil), .failure(.missingHost))
        XCTAssertEqual(resolve(.http1_1, ["a", "a"], targetAuthority: nil), .failure(.repeatedHost))
        for bad in ["", "a b", "a/b", "a@b", "a:port", "a:123456", "a:65536", "a:99999", "[::1", "[zz]", "a\\b", "a:1:2", "[]", "[]:80", "[::1]x", ":80", "a:8 0", ".", "..", ".a", "a..", "a..b", "a..:80", "admin.example..", "10..0.1", "admin%2eexample", "%41", "a%",
            // Read by a WHATWG URL parser as an IPv4 address other than as sent.
            "127.1", "0x7f.0.0.1", "0X7F.0.0.1", "2130706433", "017700000001", "010.0.0.1", "1.2.3.256", "1.2.3.4.5",
            "a.0x10", "a.08", "0x", "[:::]", "[1::2::3]", "[::1.2.3]", "[12345::]"] {
            XCTAssertEqual(resolve(.http1_1, [bad], targetAuthority: nil), .failure(.invalidHost), bad)
        }
        for good in ["a", "A.Example.", "10.0.0.1:80", "[::1]:8443", "xn--bcher-kva.example", "a:", "[::1]", "a~b_c!$&'()*+,;=:65535", "a.:80", "[::1.2.3.4]", "1.2.3.4.", "0.0.0.0", "255.255.255.255:80",
            "1e3", "a.0a", "a.0xg", "8.example", "[0:0::1]", "1.2.3.4.:80"] {
            XCTAssertEqual(resolve(.http1_1, [good], targetAuthority: nil), .success(good), good)
        }
        // HTTP/2's :authority arrives as Host and is held to the same rule.
        XCTAssertEqual(resolve(HTTPVersion(major: 2, minor: 0), ["admin.example.."], targetAuthority: nil), .failure(.invalidHost))
        // An absolute-form target's authority wins over Host.
        XCTAssertEqual(resolve(.http1_1, ["public.example"], targetAuthority: "admin.example"), .success("admin.example"))
        XCTAssertEqual(resolve(.http1_1, [], targetAuthority: "user@admin.example"), .failure(.invalidHost))
    }

    /// One connection's requests share what was found valid, and only the same bytes are
    /// taken as checked: not a spelling String's `==` holds equal, not one of the same length.
    func testAHostFoundValidOnAConnectionIsTakenAsCheckedOnlyForItsExactBytes() {
        // One parser's room across a connection's requests, where a host's check is kept.
        var room = HTTP1HeadParser.RequestRoom()
        func resolve(_ host: String) -> Result<String?, RequestAuthority.Problem> {
            let head = Array("GET / HTTP/1.1\r\nHost: ".utf8) + Array(host.utf8) + Array("\r\n\r\n".utf8)
            let parsed = try? head.withUnsafeBytes { bytes throws(HTTP1RequestError) in try HTTP1HeadParser.requestHead(bytes, room: &room).request }
            // A head the parser refuses (a NUL in a value) never reaches the check: refused too.
            guard let request = parsed else { return .failure(.invalidHost) }
            return RequestAuthority.resolve(request.fields, version: .http1_1, targetAuthority: nil)
        }
        XCTAssertEqual(resolve("K.example:80"), .success("K.example:80"))
        XCTAssertEqual(resolve("K.example:80"), .success("K.example:80"))
        // A Kelvin sign is canonically equivalent to `K`: equal as Strings, not as bytes.
        XCTAssertEqual("\u{212A}.example:80", "K.example:80")
        XCTAssertEqual(resolve("\u{212A}.example:80"), .failure(.invalidHost))
        XCTAssertEqual(resolve("K.example:8\u{0}"), .failure(.invalidHost))
        XCTAssertEqual(resolve("K.example..:8"), .failure(.invalidHost))
        XCTAssertEqual(resolve("K.example:80"), .success("K.example:80"))
        XCTAssertEqual(resolve("k.example:81"), .success("k.example:81"))
        XCTAssertEqual(resolve("127.1"), .failure(.invalidHost))
        XCTAssertEqual(resolve("k.example:81"), .success("k.example:81"))
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
        XCTAssertEqual(router.match(path: "/", method: "GET", host: "admin.example.com."), 1, "a trailing dot is ignored")
        XCTAssertEqual(router.match(path: "/", method: "GET", host: "admin.example.com.:443"), 1)
        XCTAssertEqual(router.match(path: "/", method: "GET", host: nil), 2)
        // An IPv6 address is matched by its one spelling, whichever the route or request used.
        let byAddress = Router(routes: [route("loopback", "/", host: "[0:0::1]"), route("rest", "/")])
        for host in ["[::1]", "[::0001]:8080", "[0:0:0:0:0:0:0:1]"] {
            XCTAssertEqual(byAddress.match(path: "/", method: "GET", host: host), 0, host)
        }
        XCTAssertEqual(byAddress.match(path: "/", method: "GET", host: "[::2]"), 1)
        XCTAssertNil(Router(routes: [route("api", "/api/")]).match(path: "/other", method: "GET", host: nil))
    }

    /// Upstreams disagree on letter case in paths (Express routes `/AUTH/login` as `/auth/login`,
    /// Starlette does not), so a path whose route depends on it is refused; one that matches the
    /// same route either way is not.
    func testAPathWhoseRouteDependsOnLetterCaseIsNoticed() {
        let router = Router(routes: [route("login", "/auth/", methods: ["POST"]), route("api", "/api/"), route("public", "/api/public/"), route("rest", "/")])
        func depends(_ path: String, _ method: String = "GET") -> Bool {
            router.dependsOnCase(path: path, method: method, host: nil, matched: router.match(path: path, method: method, host: nil))
        }
        XCTAssertTrue(depends("/AUTH/login", "POST"))
        XCTAssertTrue(depends("/Auth/login", "POST"))
        XCTAssertFalse(depends("/AUTH/login", "GET"), "no route but the last takes a GET there, in any case")
        XCTAssertTrue(depends("/API/x"))
        XCTAssertFalse(depends("/api/X"), "the same route either way")
        XCTAssertFalse(depends("/api/Public/x"), "the same route either way: /api/public/ comes after /api/")
        XCTAssertFalse(depends("/Images/logo.png"))
        XCTAssertFalse(depends("/auth/login", "POST"))
        // A prefix holding an upper-case letter is matched as written; a path spelled otherwise
        // that would match it ignoring case is refused.
        let upper = Router(routes: [route("reports", "/Reports/"), route("nothing-else", "/other/")])
        XCTAssertFalse(upper.dependsOnCase(path: "/Reports/1", method: "GET", host: nil, matched: 0))
        XCTAssertTrue(upper.dependsOnCase(path: "/reports/1", method: "GET", host: nil, matched: nil))
        XCTAssertFalse(upper.dependsOnCase(path: "/x", method: "GET", host: nil, matched: nil))
    }

    func testARouteNamingGETMatchesHEAD() {
        let router = Router(routes: [route("search", "/search", methods: ["GET"]), route("login", "/auth/", methods: ["POST"]), route("rest", "/")])
        XCTAssertEqual(router.match(path: "/search", method: "HEAD", host: nil), 0, "a HEAD runs the GET handler upstream")
        XCTAssertEqual(router.match(path: "/search", method: "GET", host: nil), 0)
        XCTAssertEqual(router.match(path: "/search", method: "POST", host: nil), 2)
        XCTAssertEqual(router.match(path: "/auth/login", method: "HEAD", host: nil), 2, "only GET brings HEAD")
    }

    /// A request may name another method for itself (`X-HTTP-Method-Override: DELETE`, or
    /// `?_method=DELETE`), which Rails, Symfony, Laravel, ASP.NET Core and Express honour: read
    /// in any spelling those read it in, and refused when that method would be routed elsewhere.
    func testMethodsARequestNamesForItselfAreReadAsUpstreamsReadThem() {
        func named(_ fields: [(String, String)], query: Substring = "") -> [String] {
            var headers = HTTPHeaders()
            for (name, value) in fields { headers.add(name: name, value: value) }
            let request = ClientRequest(HTTPRequestHead(version: .http1_1, method: .POST, uri: "/", headers: headers))
            return MethodOverride.methods(in: request.headers, namedInFields: request.fields.namesAnotherMethod, query: query)
        }
        XCTAssertEqual(named([("X-HTTP-Method-Override", "DELETE")]), ["DELETE"])
        XCTAssertEqual(named([("x_http_method_override", " delete\t")]), ["DELETE"], "any case, `_` for `-`, blanks trimmed")
        XCTAssertEqual(named([("X-HTTP-Method", "Put"), ("X-Method-Override", "patch")]), ["PUT", "PATCH"])
        XCTAssertEqual(named([("X-HTTP-Method-Override", "delete, post")]), ["DELETE, POST", "DELETE", "POST"], "each element of a list")
        XCTAssertEqual(named([("X-HTTP-Method-Override", "po\u{17F}t")]), ["POST"], "Unicode's upper case, as Express and Rails read it")
        XCTAssertEqual(named([("X-HTTP-Method-Overrides", "DELETE"), ("X-Method", "DELETE")]), [])
        XCTAssertEqual(named([], query: "?_method=DELETE&a=1"), ["DELETE"])
        XCTAssertEqual(named([], query: "?%5Fmethod=delete&.method=put&+_method=patch&_METHOD=get&+method=put"), ["DELETE", "PUT", "PATCH", "GET"], "as PHP reads names")
        XCTAssertEqual(named([], query: "?method=DELETE&__method=PUT&q=x"), [])
        XCTAssertEqual(named([], query: "?_m%65thod=delete&_METHOD=put"), ["DELETE", "PUT"], "spelled with escapes, in another case")
        XCTAssertEqual(named([("X-HTTP-Method-Override", "PUT")], query: "?_method=DELETE"), ["PUT", "DELETE"])

        let router = Router(routes: [route("delete", "/items/", methods: ["DELETE"]), route("rest", "/")])
        func refused(_ methods: [String], _ path: String = "/items/1", own: String = "POST") -> Bool {
            router.dependsOnNamedMethods(methods, path: path, host: nil, matched: router.match(path: path, method: own, host: nil))
        }
        XCTAssertTrue(refused(["DELETE"]))
        XCTAssertTrue(refused(["PUT", "DELETE"]))
        XCTAssertFalse(refused(["PUT", "PATCH", "POST"]), "every one of them is the same route as POST")
        XCTAssertFalse(refused(["DELETE"], "/other"), "the same route as POST")
        XCTAssertFalse(refused(["DELETE"], own: "DELETE"))
        XCTAssertTrue(refused(["POST"], own: "DELETE"), "a DELETE read as a POST leaves its route too")
        XCTAssertTrue(refused(["DELETE"], "/ITEMS/1"), "a DELETE to /items/ in another letter case")
        XCTAssertFalse(refused([]))
        XCTAssertTrue(refused(Array(repeating: "PUT", count: 5000) + ["DELETE"]), "a method named after thousands of others")
    }

    /// The `_method` parameter read on its decoded bytes, as PHP maps a name: leading spaces
    /// dropped, the first other byte `_`, `.` or `[`, then `method` in any case, and nothing after.
    func testTheMethodParameterIsReadOnTheBytesItsNameDecodesTo() {
        func named(_ query: Substring) -> [String] {
            let request = ClientRequest(HTTPRequestHead(version: .http1_1, method: .POST, uri: "/", headers: HTTPHeaders()))
            return MethodOverride.methods(in: request.headers, namedInFields: false, query: query)
        }
        XCTAssertEqual(named("?%20%20_method=a&++.METHOD=b&[MeThOd=c&%5B%6D%65%74%68%6F%64=d"), ["A", "B", "C", "D"])
        XCTAssertEqual(named("?_method%20=a&_methods=b&_metho=c&%20=d&_=e&method=f&%00_method=g&_%20method=h"), [])
        XCTAssertEqual(named("?_%E2%84%AAethod=a&_m%C3%A9thod=b&_method%00=c&%FF_method=d"), [], "bytes that are not ASCII spell none of its letters")
        let others = (0..<2000).map { "%41\($0)=1" }.joined(separator: "&")
        XCTAssertEqual(named("?\(others)&_method=delete"), ["DELETE"], "found past thousands of escaped names")

        // Against PHP's mapping done on the decoded name as a String and lower-cased as Unicode
        // does it, over every name of up to three pieces among spaces, the mapped bytes, the letters in both
        // cases, and escapes of characters that case-map or combine (Kelvin sign, long s, dotted
        // capital I, a combining accent), bytes that are no UTF-8 and NUL.
        func phpReadsMethod(_ name: String) -> Bool {
            let mapped = name.drop { $0 == " " }.map { $0 == " " || $0 == "." || $0 == "[" ? "_" : $0 }
            return String(mapped).lowercased() == "_method"
        }
        let pieces = [
            " ", "+", "%20", "_", "%5F", ".", "[", "m", "M", "e", "E", "t", "h", "o", "d", "D", "%6d",
            "%E2%84%AA", "%C5%BF", "%C4%B0", "%CC%81", "%C3%A9", "%FF", "%00", "method", "METHOD", "ethod",
        ]
        var names = pieces
        for _ in 1..<3 { names += names.flatMap { name in pieces.map { name + $0 } } }
        var matches = 0
        for name in Set(names) {
            let expected = phpReadsMethod(QueryParameter.decode(Substring(name).utf8[...]))
            XCTAssertEqual(!named("?\(name)=put").isEmpty, expected, name)
            if expected { matches += 1 }
        }
        XCTAssertGreaterThan(matches, 30, "the pieces spell the name many ways")
    }

    /// Without a route that matches on methods, no method a request names can route it
    /// elsewhere, and none is looked at.
    func testNamedMethodsMatterOnlyWhereSomeRouteMatchesOnMethods() {
        let router = Router(routes: [route("auth", "/auth/"), route("rest", "/")])
        XCTAssertFalse(router.someRouteNamesMethods)
        XCTAssertFalse(router.dependsOnNamedMethods(["DELETE", "GET", "X"], path: "/auth/1", host: nil, matched: router.match(path: "/auth/1", method: "POST", host: nil)))
        XCTAssertTrue(Router(routes: [route("d", "/items/", methods: ["DELETE"])]).someRouteNamesMethods)
    }
}
