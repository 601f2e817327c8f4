// Camera-frame normalisation: an interleaved BGRA8 image (what AVCapture and CVPixelBuffer
// deliver, rows padded to bytesPerRow) into the planar CHW float32 RGB layout the model's input
// tensor has, with per-channel mean and standard deviation. The resize before it is vImage on
// the phone (PixelPipeline.swift); this part is plain arithmetic, so it is tested here.

public struct Normalization: Equatable {
    public var mean: (Float, Float, Float)
    public var std: (Float, Float, Float)

    public init(mean: (Float, Float, Float), std: (Float, Float, Float)) {
        self.mean = mean
        self.std = std
    }

    /// torchvision's ImageNet statistics, on values scaled to [0, 1].
    public static let imagenet = Normalization(mean: (0.485, 0.456, 0.406), std: (0.229, 0.224, 0.225))

    public static func == (a: Normalization, b: Normalization) -> Bool {
        a.mean == b.mean && a.std == b.std
    }
}

public enum Preprocess {
    /// Writes `width * height` pixels of `bgra` into `out` as [R-plane, G-plane, B-plane].
    /// Returns false (writing nothing) when the buffers are too small for the geometry.
    @discardableResult
    public static func bgraToPlanarRGB(_ bgra: UnsafeRawBufferPointer, width: Int, height: Int, bytesPerRow: Int,
                                       norm: Normalization, into out: UnsafeMutableBufferPointer<Float>) -> Bool {
        let plane = width.multipliedReportingOverflow(by: height)
        guard width > 0, height > 0, !plane.overflow, bytesPerRow >= width * 4,
              out.count >= plane.partialValue * 3,
              bgra.count >= bytesPerRow * (height - 1) + width * 4 else { return false }
        let n = plane.partialValue
        let scale: (Float, Float, Float) = (1 / (255 * norm.std.0), 1 / (255 * norm.std.1), 1 / (255 * norm.std.2))
        let shift: (Float, Float, Float) = (norm.mean.0 / norm.std.0, norm.mean.1 / norm.std.1, norm.mean.2 / norm.std.2)
        for y in 0..<height {
            let row = y * bytesPerRow
            for x in 0..<width {
                let p = row + x * 4
                let i = y * width + x
                out[i] = Float(bgra[p + 2]) * scale.0 - shift.0
                out[n + i] = Float(bgra[p + 1]) * scale.1 - shift.1
                out[2 * n + i] = Float(bgra[p]) * scale.2 - shift.2
            }
        }
        return true
    }

    /// A deterministic synthetic camera frame (BGRA, opaque): the phone has no camera input
    /// during a benchmark, but the pipeline must do a camera-sized frame's work.
    public static func syntheticFrame(width: Int, height: Int, seed: UInt64) -> [UInt8] {
        var frame = [UInt8](repeating: 255, count: width * height * 4)
        var s = seed | 1
        for i in stride(from: 0, to: frame.count, by: 4) {
            s = s &* 6364136223846793005 &+ 1442695040888963407
            frame[i] = UInt8(truncatingIfNeeded: s >> 24)
            frame[i + 1] = UInt8(truncatingIfNeeded: s >> 32)
            frame[i + 2] = UInt8(truncatingIfNeeded: s >> 40)
        }
        return frame
    }
}
