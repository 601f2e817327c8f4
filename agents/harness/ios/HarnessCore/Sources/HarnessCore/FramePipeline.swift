// The result's frame_pipeline block ($defs/frame_pipeline): the seed's per-frame budget
// (preprocessing < 10 ms + inference < 15 ms + postprocessing < 8 ms, total < 33 ms) summarised
// from the per-iteration samples the session records. Percentiles are numpy's default (linear
// interpolation between closest ranks): the formula of agents/harness/frame.py's stage_times,
// so a phone's p90 and a host's p90 are the same figure.

public enum FramePipeline {
    /// What the phone's postprocessing step does (Session: Postprocess.softmax + topK).
    public static let postprocessSummary = "softmax and top-5 of output 0 (HarnessCore.Postprocess)"

    /// The q-th percentile (0...100) of `xs`, linear interpolation; nil when empty.
    public static func percentile(_ xs: [Double], _ q: Double) -> Double? {
        guard !xs.isEmpty else { return nil }
        let s = xs.sorted()
        let pos = q / 100 * Double(s.count - 1)
        let lo = Int(pos.rounded(.down))
        let hi = min(lo + 1, s.count - 1)
        return s[lo] + (s[hi] - s[lo]) * (pos - Double(lo))
    }

    /// p10 / p50 / p90 / mean of one stage ($defs/times); nil when empty.
    public static func times(_ xs: [Double]) -> JSONValue? {
        guard let p10 = percentile(xs, 10), let p50 = percentile(xs, 50), let p90 = percentile(xs, 90) else {
            return nil
        }
        let mean = xs.reduce(0, +) / Double(xs.count)
        return .object(["p10": .double(p10), "p50": .double(p50), "p90": .double(p90), "mean": .double(mean)])
    }

    /// The block, or nil unless every stage has one sample per timed iteration.
    public static func block(pre: [Double], inference: [Double], post: [Double], frame: FrameSize,
                             preprocess: String, postprocess: String = postprocessSummary) -> JSONValue? {
        guard !inference.isEmpty, pre.count == inference.count, post.count == inference.count else { return nil }
        let total = (0..<inference.count).map { pre[$0] + inference[$0] + post[$0] }
        guard let p = times(pre), let i = times(inference), let o = times(post), let t = times(total) else { return nil }
        return .object([
            "simulated": .bool(false), "source": .string("measured"),
            "frame": .object(["width": .int(Int64(frame.width)), "height": .int(Int64(frame.height)),
                              "format": .string("BGRA8")]),
            "preprocess": .string(bounded(preprocess, 300)), "postprocess": .string(bounded(postprocess, 300)),
            "iterations": .int(Int64(inference.count)),
            "preprocess_ms": p, "inference_ms": i, "postprocess_ms": o, "total_ms": t,
        ])
    }
}

/// A camera frame's geometry (what the preprocessor resizes from).
public struct FrameSize: Equatable {
    public var width: Int
    public var height: Int

    public init(width: Int, height: Int) {
        self.width = width
        self.height = height
    }
}
