// The golden input and the output summary, bit-for-bit the same as
// agents.harness.contract.golden_input / summarize_output:
//   x[i] = ((i * 2654435761 + seed) mod 2^32) / 2^32, as float32.
// Computed in UInt64 with wrapping arithmetic: numpy wraps at 2^64 too, and 2^64 is a multiple
// of 2^32, so the low 32 bits agree. The division is done in Double, then rounded to Float,
// exactly like numpy's float64 -> float32 cast.

public enum Golden {
    public static let multiplier: UInt64 = 2654435761

    public static func fill(_ out: UnsafeMutableBufferPointer<Float>, seed: UInt64) {
        for i in 0..<out.count {
            let v = (UInt64(i) &* multiplier &+ seed) & 0xFFFF_FFFF
            out[i] = Float(Double(v) / 4294967296.0)
        }
    }

    public static func input(count: Int, seed: UInt64) -> [Float] {
        var values = [Float](repeating: 0, count: count)
        values.withUnsafeMutableBufferPointer { fill($0, seed: seed) }
        return values
    }
}

/// The result's `output` block. Non-finite values are counted, never written as numbers.
public struct OutputSummary: Equatable {
    public var digest: String
    public var shape: [Int]
    public var top1: Int
    public var head: [Double]
    public var nonFinite: Int
    public var firstNonFinite: Int?

    public init(_ values: [Float], shape: [Int], headCount: Int = 16) {
        digest = values.withUnsafeBytes { raw in
            var d = SHA256Digest()
            d.update(raw)
            return d.finalize()
        }
        self.shape = shape
        top1 = Postprocess.argmax(values) ?? 0
        head = values.prefix(headCount).map { Double($0) }
        nonFinite = 0
        firstNonFinite = nil
        for (i, v) in values.enumerated() where !v.isFinite {
            nonFinite += 1
            if firstNonFinite == nil { firstNonFinite = i }
        }
    }

    public var json: JSONValue {
        var o: [String: JSONValue] = [
            "digest": .string(digest), "shape": .array(shape.map { .int(Int64($0)) }), "top1": .int(Int64(top1)),
        ]
        // A NaN in the head would make the document invalid JSON; a head with a hole would
        // misalign the golden comparison, so the head is left out entirely.
        if head.allSatisfy({ $0.isFinite }) { o["head"] = .array(head.map { .double($0) }) }
        return .object(o)
    }

    /// max_abs_error / top1_agrees against the golden output's values and top-1, the same
    /// arithmetic as orchestrator.export.golden.compare (over the head only).
    public func compare(goldenValues: [Double], goldenTop1: Int, goldenShape: [Int]) -> (maxAbsError: Double?, top1Agrees: Bool) {
        guard shape == goldenShape, !head.isEmpty, goldenValues.count >= head.count else { return (nil, false) }
        var worst = 0.0
        for (a, b) in zip(head, goldenValues) {
            let d = abs(a - b)
            if !d.isFinite { return (nil, top1 == goldenTop1) }
            worst = max(worst, d)
        }
        return (worst, top1 == goldenTop1)
    }
}
