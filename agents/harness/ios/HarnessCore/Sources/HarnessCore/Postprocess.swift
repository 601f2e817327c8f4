import Foundation

// Output postprocessing for classification heads: softmax and top-k, NaN-aware (a NaN never
// wins a comparison, so it is skipped rather than propagated into the ranking).

public enum Postprocess {
    /// Index of the largest finite value, nil when there is none. Ties keep the first index,
    /// like numpy's argmax.
    public static func argmax(_ values: [Float]) -> Int? {
        var best: Int?
        for (i, v) in values.enumerated() where v.isFinite || v == .infinity {
            if best == nil || v > values[best!] { best = i }
        }
        return best
    }

    /// Numerically stable softmax (the largest finite logit subtracted first). A NaN logit stays
    /// NaN and is left out of the sum, so the other entries still form a distribution.
    public static func softmax(_ logits: [Float]) -> [Float] {
        guard let m = logits.filter({ !$0.isNaN }).max() else { return logits }
        let exps = logits.map { $0.isNaN ? Float.nan : ($0 == m ? 1 : Float(exp(Double($0 - m)))) }
        let sum = exps.reduce(Float(0)) { $1.isNaN ? $0 : $0 + $1 }
        return exps.map { $0 / sum }
    }

    /// The k best (index, value) pairs, best first, NaNs excluded; k is clamped to the count.
    public static func topK(_ values: [Float], k: Int) -> [(index: Int, value: Float)] {
        guard k > 0 else { return [] }
        var best: [(index: Int, value: Float)] = []
        best.reserveCapacity(k + 1)
        for (i, v) in values.enumerated() where !v.isNaN {
            if best.count == k, let last = best.last, v <= last.value { continue }
            let at = best.firstIndex { v > $0.value } ?? best.count
            best.insert((i, v), at: at)
            if best.count > k { best.removeLast() }
        }
        return best
    }
}

