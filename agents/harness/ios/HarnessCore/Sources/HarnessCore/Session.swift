// One benchmark run: Documents/job.json in, Documents/result.json out. Always leaves a result
// behind: a bad job, a wrong model hash, a load failure, a NaN output, a hung forward pass
// (the watchdog writes a timeout result at timeout_s) all end in a schema-valid document.
import Foundation

public final class BenchmarkSession {
    public let documents: URL
    let runner: ProgramRunner
    let probe: DeviceProbe
    let preprocessor: FramePreprocessor
    let clock: MonotonicClock
    let sink: ResultSink
    /// Called by the watchdog after it wrote a timeout result (the app exits; tests record).
    let onTimeout: (Int32) -> Void
    let now: () -> String

    public init(documents: URL, runner: ProgramRunner, probe: DeviceProbe, preprocessor: FramePreprocessor,
                clock: MonotonicClock = DispatchClock(), onTimeout: @escaping (Int32) -> Void = { _ in },
                now: @escaping () -> String = BenchmarkSession.timestamp) {
        self.documents = documents
        self.runner = runner
        self.probe = probe
        self.preprocessor = preprocessor
        self.clock = clock
        self.sink = ResultSink(url: documents.appendingPathComponent("result.json"))
        self.onTimeout = onTimeout
        self.now = now
    }

    public static func timestamp() -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date())
    }

    /// Runs the job; returns the exit code (0 only for a written ok result).
    public func run() -> Int32 {
        var start = ResultDocument()
        start.producerVersion = probe.producerVersion
        start.device = probe.identity()
        start.runtimeVersion = runner.runtimeVersion
        start.startedAt = now()
        start.thermalBefore = probe.thermalState()
        start.batteryBefore = .some(probe.battery())
        let shared = SharedDocument(start)
        do {
            let job = try readJob()
            shared.update { d in
                d.jobId = job.jobId
                d.attemptId = job.attemptId
                d.attemptToken = job.attemptToken
                d.backend = job.backend
                if job.profileRequested { d.profile = ResultDocument.profileUnsupported }
            }
            let deadline = Deadline(clock: clock, seconds: job.timeoutS)
            let watchdog = startWatchdog(deadline: deadline, shared: shared)
            defer { watchdog.cancel() }
            try measure(job, deadline: deadline, into: shared)
            shared.update { d in
                if d.error == nil {
                    d.status = "ok"
                    d.error = .some(nil)
                }
            }
        } catch let e as HarnessError {
            shared.update { $0.fail(e) }
        } catch {
            shared.update { $0.fail(HarnessError(.other, "\(error)")) }
        }
        var doc = finish(shared.snapshot)
        if !sink.write(doc) { doc.status = "error" }  // the watchdog already wrote a timeout result
        return doc.status == "ok" && sink.hasWritten ? 0 : 1
    }

    private func finish(_ d: ResultDocument) -> ResultDocument {
        var doc = d
        doc.thermalAfter = probe.thermalState()
        doc.batteryAfter = .some(probe.battery())
        doc.finishedAt = now()
        return doc
    }

    private func readJob() throws -> Job {
        let url = documents.appendingPathComponent("job.json")
        let attrs = try? FileManager.default.attributesOfItem(atPath: url.path)
        guard let size = attrs?[.size] as? NSNumber else { throw HarnessError.badJob("$", "no job.json in Documents/") }
        guard size.intValue <= Job.maxBytes else {
            throw HarnessError.badJob("$", "\(size.intValue) bytes, over the \(Job.maxBytes) limit")
        }
        guard let data = try? Data(contentsOf: url) else { throw HarnessError.badJob("$", "job.json unreadable") }
        return try Job.decode(data)
    }

    private func startWatchdog(deadline: Deadline, shared: SharedDocument) -> DispatchWorkItem {
        let item = DispatchWorkItem { [sink, onTimeout] in
            var doc = self.finish(shared.snapshot)
            doc.latenciesMs = doc.latenciesMs ?? []
            doc.fail(HarnessError(.timeout, "timeout_s=\(deadline.seconds) reached while a forward pass was running"))
            if sink.write(doc) { onTimeout(1) }
        }
        DispatchQueue.global(qos: .userInitiated).asyncAfter(deadline: .now() + deadline.remainingS, execute: item)
        return item
    }

    private func measure(_ job: Job, deadline: Deadline, into shared: SharedDocument) throws {
        let model = documents.appendingPathComponent(job.modelFile)
        guard FileManager.default.fileExists(atPath: model.path) else {
            throw HarnessError(.other, "\(job.modelFile) is not in Documents/")
        }
        // A truncated or swapped program must not be measured as if it were the exported one.
        let actual = try SHA256Digest.hex(fileAt: model)
        guard actual == job.modelSha256 else {
            throw HarnessError(.other, "\(job.modelFile) sha256 is \(actual), the job expects \(job.modelSha256)")
        }
        if let wanted = job.runtime, !wanted.isEmpty, !runner.backends.contains(wanted) {
            throw HarnessError(.unsupportedOp, "this harness has no \(wanted) (it links \(runner.backends.sorted().joined(separator: ", ")))")
        }
        let t = clock.timebase
        let loadStart = clock.now()
        try runner.load(programAt: model, job: job)
        let loadMs = t.ms(from: loadStart, to: clock.now())
        shared.update { $0.loadTimeMs = loadMs; $0.energyMjPerInference = .some(nil) }

        let count = job.inputElementCount
        var input = [Float](repeating: 0, count: count)
        let shape = job.inputShape
        let isImage = shape.count == 4 && shape[1] == 3
        var peak = probe.footprint().peak
        for i in 0..<(job.warmup + job.iterations) {
            let pre = clock.now()
            try input.withUnsafeMutableBufferPointer { buf in
                if isImage {
                    let plane = shape[1] * shape[2] * shape[3]
                    for n in 0..<shape[0] {
                        try preprocessor.run(into: UnsafeMutableBufferPointer(rebasing: buf[(n * plane)..<((n + 1) * plane)]),
                                             channels: 3, height: shape[2], width: shape[3])
                    }
                } else {
                    Golden.fill(buf, seed: job.goldenSeed &+ UInt64(i))
                }
            }
            let t0 = clock.now()
            let out = try input.withUnsafeMutableBufferPointer { try runner.forward(input: $0, shape: shape) }
            let t1 = clock.now()
            _ = Postprocess.topK(Postprocess.softmax(out.values), k: 5)
            let t2 = clock.now()
            peak = max(peak, probe.footprint().peak)
            let (fwd, preMs, postMs, p) = (t.ms(from: t0, to: t1), t.ms(from: pre, to: t0), t.ms(from: t1, to: t2), peak)
            shared.update { d in
                if i < job.warmup {
                    d.warmupLatenciesMs = (d.warmupLatenciesMs ?? []) + [fwd]
                } else {
                    d.latenciesMs = (d.latenciesMs ?? []) + [fwd]
                    d.preprocessMs = (d.preprocessMs ?? []) + [preMs]
                    d.postprocessMs = (d.postprocessMs ?? []) + [postMs]
                }
                d.peakMemoryBytes = p
            }
            if deadline.expired {
                throw HarnessError(.timeout, "timeout_s=\(job.timeoutS) reached after \(i + 1) of \(job.warmup + job.iterations) passes")
            }
        }
        if isImage {
            shared.update { d in
                d.framePipeline = FramePipeline.block(pre: d.preprocessMs ?? [], inference: d.latenciesMs ?? [],
                                                      post: d.postprocessMs ?? [], frame: preprocessor.frameSize,
                                                      preprocess: preprocessor.summary)
            }
        }
        try goldenPass(job, input: &input, into: shared)
    }

    /// One untimed pass on the contract's golden input: its output is what the coordinator
    /// compares with the eager fp32 output, so a device returning garbage fast is caught.
    private func goldenPass(_ job: Job, input: inout [Float], into shared: SharedDocument) throws {
        input.withUnsafeMutableBufferPointer { Golden.fill($0, seed: job.goldenSeed) }
        let out = try input.withUnsafeMutableBufferPointer { try runner.forward(input: $0, shape: job.inputShape) }
        let expected = try Shape.elementCount(out.shape, limit: Int.max)
        guard expected == out.values.count else {
            throw HarnessError(.runtimeError, "output 0 has \(out.values.count) values for shape \(out.shape)")
        }
        let summary = OutputSummary(out.values, shape: out.shape)
        shared.update { d in
            d.output = .some(ResultOutput(summary))
            if summary.nonFinite > 0 {
                d.fail(HarnessError(.runtimeError, "output 0 has \(summary.nonFinite) non-finite values (NaN/Inf), "
                                    + "first at flat index \(summary.firstNonFinite ?? 0)"))
            }
        }
    }

    /// Starts `run` on a dedicated thread. The quality of service is set before `start()`:
    /// set from inside the running thread it has no effect on the already-scheduled thread.
    public func start(qos: QualityOfService = .userInteractive, completion: @escaping (Int32) -> Void) {
        let thread = Thread { [self] in completion(self.run()) }
        thread.qualityOfService = qos
        thread.name = "benchfarm.session"
        thread.start()
    }
}
