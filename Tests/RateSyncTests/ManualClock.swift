import NIOConcurrencyHelpers
import RateSync

/// A clock the test moves by hand.
final class ManualClock: WallClock {
    private let time: NIOLockedValueBox<Double>

    init(_ start: Double = 1_700_000_000) {
        time = NIOLockedValueBox(start)
    }

    func now() -> Double { time.withLockedValue { $0 } }

    func advance(_ seconds: Double) { time.withLockedValue { $0 += seconds } }
}
