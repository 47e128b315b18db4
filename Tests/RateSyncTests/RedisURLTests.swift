import RateSync
import XCTest

final class RedisURLTests: XCTestCase {
    func testForms() throws {
        XCTAssertEqual(try RedisURL.parse("redis://localhost"), RedisURL(host: "localhost"))
        XCTAssertEqual(
            try RedisURL.parse("redis://:p%40ss@redis-cluster:6380/2"),
            RedisURL(host: "redis-cluster", port: 6380, password: "p@ss", database: 2)
        )
        XCTAssertEqual(
            try RedisURL.parse("rediss://app:secret@[::1]:6390/0"),
            RedisURL(useTLS: true, host: "::1", port: 6390, username: "app", password: "secret", database: 0)
        )
    }

    func testRejections() {
        XCTAssertThrowsError(try RedisURL.parse("http://x"))
        XCTAssertThrowsError(try RedisURL.parse("redis://host:99999"))
        XCTAssertThrowsError(try RedisURL.parse("redis://host/abc"))
        XCTAssertThrowsError(try RedisURL.parse("redis://:pw@"))
    }

    func testRedactionNeverShowsThePassword() throws {
        let url = try RedisURL.parse("redis://app:hunter2@db:6379/1")
        XCTAssertEqual(url.redacted, "redis://app:***@db:6379/1")
        XCTAssertFalse(url.redacted.contains("hunter2"))
    }
}
