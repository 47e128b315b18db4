import EventLoopSupport
import NIOPosix
import XCTest

/// Objects marked as living as long as the process: never freed, however their references come
/// and go.
final class ProcessLifetimeTests: XCTestCase {
    private final class Tracked {
        let onFree: () -> Void
        init(onFree: @escaping () -> Void) { self.onFree = onFree }
        deinit { onFree() }
    }

    private final class Flag {
        var isSet = false
    }

    func testAnObjectKeptForeverIsNeverFreed() {
        let freed = Flag()
        var object: Tracked? = Tracked { freed.isSet = true }
        XCTAssertTrue(ProcessLifetime.keepForever(object!))
        var copies: [Tracked] = []
        for _ in 0..<1000 { copies.append(object!) }
        copies.removeAll()
        object = nil
        XCTAssertFalse(freed.isSet, "its last reference is gone, and it is still there")
    }

    func testAnUnmarkedObjectIsFreedAsUsual() {
        let freed = Flag()
        var object: Tracked? = Tracked { freed.isSet = true }
        XCTAssertNotNil(object)
        object = nil
        XCTAssertTrue(freed.isSet)
    }

    func testAnObjectWithAWeakReferenceIsLeftAsItIs() {
        // Its count then lives in a side table, whose address marking it would overwrite.
        let freed = Flag()
        var object: Tracked? = Tracked { freed.isSet = true }
        weak let weakReference = object
        XCTAssertFalse(ProcessLifetime.keepForever(object!))
        XCTAssertNotNil(weakReference)
        object = nil
        XCTAssertTrue(freed.isSet)
        XCTAssertNil(weakReference)
    }

    func testMarkingTwiceIsHarmless() {
        let object = Tracked {}
        XCTAssertTrue(ProcessLifetime.keepForever(object))
        XCTAssertFalse(ProcessLifetime.keepForever(object), "already marked: its count says so")
    }

    func testAGroupsLoopsKeptForeverStillRunTasksAndShutDown() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        ProcessLifetime.keepLoopsForever(of: group)
        for loop in group.makeIterator() {
            XCTAssertEqual(try loop.submit { 42 }.wait(), 42)
        }
        try group.syncShutdownGracefully()
    }
}
