// Shape arithmetic that cannot trap: `reduce(1, *)` on a hostile or corrupt shape overflows
// Int and kills the app (Swift traps on overflow) before any result is written.

public enum Shape {
    /// Product of the dimensions, or a HarnessError when a dimension is negative or the
    /// product overflows or exceeds `limit`. An empty shape is a scalar (1 element).
    public static func elementCount(_ shape: [Int64], limit: Int) throws -> Int {
        var n: Int64 = 1
        for (i, d) in shape.enumerated() {
            guard d >= 0 else { throw HarnessError(.runtimeError, "dimension \(i) is negative (\(d))") }
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            guard !overflow, p <= Int64(limit) else {
                throw HarnessError(.outOfMemory, "shape \(shape) has more than \(limit) elements")
            }
            n = p
        }
        return Int(n)
    }

    public static func elementCount(_ shape: [Int], limit: Int) throws -> Int {
        try elementCount(shape.map { Int64($0) }, limit: limit)
    }
}
