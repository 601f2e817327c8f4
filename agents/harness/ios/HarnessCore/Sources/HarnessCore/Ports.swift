// What the run sequence needs from the platform. The iOS app implements these with ExecuTorch,
// Mach, UIKit and vImage (agents/harness/ios/BenchfarmHarness/); the core's tests implement
// them in plain Swift so the sequence itself runs on Linux.
import Foundation

public protocol ProgramRunner: AnyObject {
    /// The ExecuTorch runtime version linked into the app, reported in every result so the
    /// coordinator can refuse a program exported by a newer ExecuTorch.
    var runtimeVersion: String { get }
    /// Backend ids (e.g. "XnnpackBackend", "CoreMLBackend") the app links.
    var backends: Set<String> { get }
    /// Loads the program; throws a HarnessError whose category names the failure.
    func load(programAt url: URL, job: Job) throws
    /// Runs `forward` on `input` (float32, `shape`) and returns output 0 and its shape.
    func forward(input: UnsafeMutableBufferPointer<Float>, shape: [Int]) throws -> (values: [Float], shape: [Int])
}

public protocol DeviceProbe {
    var producerVersion: String { get }
    func identity() -> [String: String]
    func thermalState() -> String
    func battery() -> Battery?
    /// (current, lifetime peak) memory footprint in bytes
    func footprint() -> (current: UInt64, peak: UInt64)
}

/// Turns one camera-sized frame into the model's NCHW float input (resize + normalise).
public protocol FramePreprocessor {
    /// The camera frame's geometry, reported in the result's frame_pipeline block.
    var frameSize: FrameSize { get }
    /// What the step does and with what (the block's `preprocess`), e.g. "vImage Lanczos resize, ...".
    var summary: String { get }
    func run(into out: UnsafeMutableBufferPointer<Float>, channels: Int, height: Int, width: Int) throws
}

/// Portable preprocessing: nearest-neighbour resize of a synthetic BGRA frame, then the core's
/// normalisation. The phone uses vImage for the resize instead (VImagePreprocessor).
public final class PortablePreprocessor: FramePreprocessor {
    public let frameWidth: Int
    public let frameHeight: Int
    private let frame: [UInt8]
    private var resized: [UInt8] = []

    public init(frameWidth: Int = 1920, frameHeight: Int = 1080, seed: UInt64 = 1) {
        self.frameWidth = frameWidth
        self.frameHeight = frameHeight
        frame = Preprocess.syntheticFrame(width: frameWidth, height: frameHeight, seed: seed)
    }

    public var frameSize: FrameSize { FrameSize(width: frameWidth, height: frameHeight) }
    public let summary = "nearest-neighbour resize of the BGRA frame, ImageNet normalisation into planar RGB (portable Swift)"

    public func run(into out: UnsafeMutableBufferPointer<Float>, channels: Int, height: Int, width: Int) throws {
        guard channels == 3 else { throw HarnessError(.runtimeError, "frame preprocessing needs 3 channels") }
        if resized.count != width * height * 4 { resized = [UInt8](repeating: 0, count: width * height * 4) }
        for y in 0..<height {
            let sy = y * frameHeight / height
            for x in 0..<width {
                let src = (sy * frameWidth + x * frameWidth / width) * 4
                let dst = (y * width + x) * 4
                for c in 0..<4 { resized[dst + c] = frame[src + c] }
            }
        }
        let ok = resized.withUnsafeBytes {
            Preprocess.bgraToPlanarRGB($0, width: width, height: height, bytesPerRow: width * 4, norm: .imagenet, into: out)
        }
        guard ok else { throw HarnessError(.runtimeError, "preprocessing buffers do not match \(width)x\(height)") }
    }
}

/// Writes result.json atomically, once: the run and the timeout watchdog may both try, and
/// the agent must never pull half a file or a document that changes under it.
public final class ResultSink {
    public let url: URL
    private let lock = NSLock()
    private var written = false

    public init(url: URL) { self.url = url }

    @discardableResult
    public func write(_ doc: ResultDocument) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        guard !written else { return false }
        written = true
        return (try? doc.encoded().write(to: url, options: .atomic)) != nil
    }

    public var hasWritten: Bool {
        lock.lock()
        defer { lock.unlock() }
        return written
    }
}

/// The document under construction, shared with the watchdog thread.
final class SharedDocument {
    private let lock = NSLock()
    private var doc: ResultDocument

    init(_ doc: ResultDocument) { self.doc = doc }

    func update(_ body: (inout ResultDocument) -> Void) {
        lock.lock()
        defer { lock.unlock() }
        body(&doc)
    }

    var snapshot: ResultDocument {
        lock.lock()
        defer { lock.unlock() }
        return doc
    }
}
