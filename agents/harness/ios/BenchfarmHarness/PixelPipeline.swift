// The preprocessing a camera app does before every inference: a camera-sized BGRA
// CVPixelBuffer (1920x1080, what AVCaptureVideoDataOutput delivers with kCVPixelFormatType_32BGRA)
// resized with vImage to the model's input size, then normalised into the input tensor's planar
// float32 RGB by the core (Preprocess.bgraToPlanarRGB, tested on Linux).
import HarnessCore

#if canImport(Accelerate) && canImport(CoreVideo)
import Accelerate
import CoreVideo

final class VImagePreprocessor: FramePreprocessor {
    private let frame: CVPixelBuffer
    private var scaled: [UInt8] = []
    let frameSize: FrameSize
    let summary = "vImageScale_ARGB8888 (high-quality resampling) of the BGRA CVPixelBuffer, ImageNet normalisation into planar RGB"

    init(width: Int = 1920, height: Int = 1080, seed: UInt64 = 1) throws {
        var buffer: CVPixelBuffer?
        let attrs = [kCVPixelBufferIOSurfacePropertiesKey: [:]] as CFDictionary
        let status = CVPixelBufferCreate(kCFAllocatorDefault, width, height, kCVPixelFormatType_32BGRA, attrs, &buffer)
        guard status == kCVReturnSuccess, let buffer else {
            throw HarnessError(.harnessCrash, "CVPixelBufferCreate failed (\(status))")
        }
        // A deterministic frame, row by row: CoreVideo pads rows to its own bytesPerRow.
        let pixels = Preprocess.syntheticFrame(width: width, height: height, seed: seed)
        CVPixelBufferLockBaseAddress(buffer, [])
        if let base = CVPixelBufferGetBaseAddress(buffer) {
            let stride = CVPixelBufferGetBytesPerRow(buffer)
            pixels.withUnsafeBytes { src in
                for y in 0..<height {
                    (base + y * stride).copyMemory(from: src.baseAddress! + y * width * 4, byteCount: width * 4)
                }
            }
        }
        CVPixelBufferUnlockBaseAddress(buffer, [])
        frame = buffer
        frameSize = FrameSize(width: width, height: height)
    }

    func run(into out: UnsafeMutableBufferPointer<Float>, channels: Int, height: Int, width: Int) throws {
        guard channels == 3 else { throw HarnessError(.runtimeError, "frame preprocessing needs 3 channels") }
        if scaled.count != width * height * 4 { scaled = [UInt8](repeating: 0, count: width * height * 4) }
        CVPixelBufferLockBaseAddress(frame, .readOnly)
        defer { CVPixelBufferUnlockBaseAddress(frame, .readOnly) }
        var src = vImage_Buffer(data: CVPixelBufferGetBaseAddress(frame),
                                height: vImagePixelCount(CVPixelBufferGetHeight(frame)),
                                width: vImagePixelCount(CVPixelBufferGetWidth(frame)),
                                rowBytes: CVPixelBufferGetBytesPerRow(frame))
        let err: vImage_Error = scaled.withUnsafeMutableBytes { dstBytes in
            var dst = vImage_Buffer(data: dstBytes.baseAddress, height: vImagePixelCount(height),
                                    width: vImagePixelCount(width), rowBytes: width * 4)
            // 4-channel interleaved scale: channel order does not matter to the resampler
            return vImageScale_ARGB8888(&src, &dst, nil, vImage_Flags(kvImageHighQualityResampling))
        }
        guard err == kvImageNoError else { throw HarnessError(.runtimeError, "vImageScale_ARGB8888 failed (\(err))") }
        let ok = scaled.withUnsafeBytes {
            Preprocess.bgraToPlanarRGB($0, width: width, height: height, bytesPerRow: width * 4, norm: .imagenet, into: out)
        }
        guard ok else { throw HarnessError(.runtimeError, "normalisation buffers do not match \(width)x\(height)") }
    }
}
#endif
