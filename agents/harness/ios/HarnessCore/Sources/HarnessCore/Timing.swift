// Monotonic tick arithmetic and the run deadline. Ticks come from mach_absolute_time on the
// phone (a timebase converts them) and from DispatchTime on Linux; both are UInt64.
import Foundation

public struct Timebase {
    public let numer: UInt32
    public let denom: UInt32

    public init(numer: UInt32, denom: UInt32) {
        self.numer = numer
        self.denom = max(denom, 1)
    }

    /// Nanosecond ticks (Linux, and Apple Silicon Macs where numer == denom).
    public static let nanoseconds = Timebase(numer: 1, denom: 1)

    /// Milliseconds between two ticks. `end - start` on UInt64 traps when end < start (a clock
    /// read out of order); such an interval is 0, never a crash or a negative number (the
    /// schema refuses a 0 latency, so that attempt is retried rather than stored). Done in
    /// Double: ticks * numer can overflow UInt64.
    public func ms(from start: UInt64, to end: UInt64) -> Double {
        guard end > start else { return 0 }
        return Double(end - start) * Double(numer) / Double(denom) / 1_000_000.0
    }
}

public protocol MonotonicClock {
    var timebase: Timebase { get }
    func now() -> UInt64
}

public struct DispatchClock: MonotonicClock {
    public init() {}
    public var timebase: Timebase { .nanoseconds }
    public func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
}

/// The job's timeout_s as a deadline on the monotonic clock.
public struct Deadline {
    public let clock: MonotonicClock
    public let start: UInt64
    public let seconds: Double

    public init(clock: MonotonicClock, seconds: Double) {
        self.clock = clock
        self.start = clock.now()
        self.seconds = seconds
    }

    public var elapsedS: Double { clock.timebase.ms(from: start, to: clock.now()) / 1000 }
    public var remainingS: Double { max(0, seconds - elapsedS) }
    public var expired: Bool { elapsedS >= seconds }
}

public enum Stats {
    /// Median of the samples (mean of the middle two for an even count); nil when empty.
    public static func median(_ xs: [Double]) -> Double? {
        guard !xs.isEmpty else { return nil }
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}
