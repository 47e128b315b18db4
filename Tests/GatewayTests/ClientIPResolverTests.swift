import Gateway
import XCTest

final class ClientIPResolverTests: XCTestCase {
    /// The networks an operator behind a proxy tier might trust.
    let resolver = ClientIPResolver(trustedNetworks: [
        "127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7",
    ].compactMap(IPNetwork.init))

    func testNobodyIsTrustedByDefault() {
        let untrusting = ClientIPResolver()
        for peer in ["127.0.0.1", "10.0.0.5", "192.168.1.1", "172.16.0.1", "fd12::1", "::1"] {
            XCTAssertFalse(untrusting.isTrusted(IPAddress(peer)!), peer)
            XCTAssertEqual(untrusting.resolve(peer: IPAddress(peer)!, forwardedFor: ["198.51.100.7"]).description, IPAddress(peer)!.description)
        }
    }

    private func resolve(_ peer: String, _ forwardedFor: [String]) -> String {
        resolver.resolve(peer: IPAddress(peer)!, forwardedFor: forwardedFor).description
    }

    func testAnUntrustedPeerIsTheClientWhateverItClaims() {
        XCTAssertEqual(resolve("203.0.113.9", ["1.2.3.4"]), "203.0.113.9")
    }

    func testATrustedProxyIsLookedThrough() {
        XCTAssertEqual(resolve("10.0.0.5", ["198.51.100.7"]), "198.51.100.7")
    }

    func testSpoofedLeftmostEntriesAreIgnored() {
        // The client wrote "6.6.6.6"; our own proxy (10.0.0.5) appended the real address.
        XCTAssertEqual(resolve("10.0.0.5", ["6.6.6.6, 198.51.100.7"]), "198.51.100.7")
        XCTAssertEqual(resolve("127.0.0.1", ["6.6.6.6", "198.51.100.7, 192.168.1.10"]), "198.51.100.7")
    }

    func testAllTrustedChainEndsAtTheLeftmostTrustedHop() {
        XCTAssertEqual(resolve("127.0.0.1", ["10.1.1.1, 10.2.2.2"]), "10.1.1.1")
    }

    func testGarbageStopsTheWalk() {
        XCTAssertEqual(resolve("127.0.0.1", ["198.51.100.7, not-an-ip, 10.0.0.9"]), "10.0.0.9")
        XCTAssertEqual(resolve("127.0.0.1", ["unknown"]), "127.0.0.1")
    }

    func testPortsAndIPv6AreNormalised() {
        XCTAssertEqual(resolve("::1", ["[2001:DB8:0:0::1]:4711"]), "2001:db8::1")
        XCTAssertEqual(resolve("::1", ["198.51.100.7:4711"]), "198.51.100.7")
        XCTAssertEqual(IPAddress("::ffff:198.51.100.7")?.description, "198.51.100.7")
        XCTAssertEqual(IPAddress("2001:0db8:0000:0000:0000:0000:0000:0001")?.description, "2001:db8::1")
        XCTAssertEqual(resolve("fd12::1", ["2001:db8::2"]), "2001:db8::2", "fc00::/7 is trusted here")
    }

    func testCustomTrustedNetworks() {
        let custom = ClientIPResolver(trustedNetworks: [IPNetwork("100.64.0.0/10")!])
        XCTAssertEqual(custom.resolve(peer: IPAddress("100.64.3.3")!, forwardedFor: ["8.8.8.8"]).description, "8.8.8.8")
        XCTAssertEqual(custom.resolve(peer: IPAddress("10.0.0.1")!, forwardedFor: ["8.8.8.8"]).description, "10.0.0.1")
    }

    func testNetworks() {
        XCTAssertTrue(IPNetwork("172.16.0.0/12")!.contains(IPAddress("172.31.255.255")!))
        XCTAssertFalse(IPNetwork("172.16.0.0/12")!.contains(IPAddress("172.32.0.0")!))
        XCTAssertTrue(IPNetwork("fc00::/7")!.contains(IPAddress("fdff::1")!))
        XCTAssertFalse(IPNetwork("10.0.0.0/8")!.contains(IPAddress("::ffff:11.0.0.1")!))
        XCTAssertNil(IPNetwork("10.0.0.0/33"))
        XCTAssertNil(IPNetwork("banana"))
    }
}
