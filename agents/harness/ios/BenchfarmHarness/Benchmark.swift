// One benchmark run: job.json in, result.json out (agents/harness/contract/result.schema.json).
import ExecuTorch
import Foundation

struct BenchmarkSession {
    let documents: URL

    /// Runs the job and always tries to leave a result document behind; returns the exit code.
    func run() -> Int32 {
        let startedAt = Timestamp.now()
        var doc: [String: Any] = [
            "schema_version": 1,
            "simulated": false,
            "producer": ["name": "ios-harness", "version": Self.version],
            "device": DeviceIdentity.block(),
            "started_at": startedAt,
            "thermal_before": Thermal.state(),
            "battery_before": Battery.reading() ?? NSNull(),
        ]
        var job: Job?
        do {
            let loaded = try Job.load(from: documents.appendingPathComponent("job.json"))
            job = loaded
            doc["job_id"] = loaded.jobId
            doc["attempt_id"] = loaded.attemptId
            doc["attempt_token"] = loaded.attemptToken
            doc["backend"] = loaded.backend
            try measure(loaded, into: &doc)
            doc["status"] = "ok"
            doc["error"] = NSNull()
        } catch let error as HarnessError {
            doc["status"] = "error"
            doc["error"] = ["category": error.category, "message": String(error.message.prefix(4000))]
        } catch {
            doc["status"] = "error"
            let category = job == nil ? "bad_job" : "other"
            doc["error"] = ["category": category, "message": String("\(error)".prefix(4000))]
        }
        // A job we could not even read still needs ids the agent can match; the agent treats
        // the "unknown" placeholders as a bad result of this attempt.
        for key in ["job_id", "attempt_id", "backend"] where doc[key] == nil { doc[key] = "unknown" }
        if doc["attempt_token"] == nil { doc["attempt_token"] = 0 }
        doc["thermal_after"] = Thermal.state()
        doc["battery_after"] = Battery.reading() ?? NSNull()
        doc["finished_at"] = Timestamp.now()
        return write(doc) && doc["status"] as? String == "ok" ? 0 : 1
    }

    private func measure(_ job: Job, into doc: inout [String: Any]) throws {
        let modelPath = documents.appendingPathComponent(job.modelFile).path
        let count = job.inputShape.reduce(1, *)
        let golden = Golden.input(count: count, seed: job.goldenInput.seed)

        let loadStart = Clock.now()
        let module = Module(filePath: modelPath)
        do {
            try module.load("forward")
        } catch {
            throw HarnessError.modelLoadFailed("\(error)")
        }
        doc["load_time_ms"] = Clock.ms(from: loadStart, to: Clock.now())

        var warmup: [Double] = []
        var latencies: [Double] = []
        var preprocess: [Double] = []
        var postprocess: [Double] = []
        var peak = Memory.footprint().peak
        var last: [Float] = []
        var lastShape: [Int] = []
        for i in 0..<(job.warmup + job.iterations) {
            let pre = Clock.now()
            let input = Tensor<Float>(golden, shape: job.inputShape)
            let t0 = Clock.now()
            let outputs: [Value]
            do {
                outputs = try module.forward(input)
            } catch {
                throw HarnessError.runtimeError("iteration \(i): \(error)")
            }
            let t1 = Clock.now()
            guard let tensor: Tensor<Float> = outputs.first?.tensor() else {
                throw HarnessError.runtimeError("forward returned no float tensor")
            }
            last = tensor.scalars()
            lastShape = tensor.shape
            let t2 = Clock.now()
            if i < job.warmup {
                warmup.append(Clock.ms(from: t0, to: t1))
            } else {
                latencies.append(Clock.ms(from: t0, to: t1))
                preprocess.append(Clock.ms(from: pre, to: t0))
                postprocess.append(Clock.ms(from: t1, to: t2))
            }
            peak = max(peak, Memory.footprint().peak)
        }
        doc["warmup_latencies_ms"] = warmup
        doc["latencies_ms"] = latencies
        doc["preprocess_ms"] = preprocess
        doc["postprocess_ms"] = postprocess
        doc["peak_memory_bytes"] = peak
        // iOS exposes no per-process energy counter to apps; null, never a guess.
        doc["energy_mj_per_inference"] = NSNull()
        doc["output"] = Golden.summarize(last, shape: lastShape)
    }

    /// Writes result.json atomically: the agent polls for the file, and must never pull half of it.
    private func write(_ doc: [String: Any]) -> Bool {
        guard let data = try? JSONSerialization.data(withJSONObject: doc, options: [.sortedKeys]) else {
            return false
        }
        return (try? data.write(to: documents.appendingPathComponent("result.json"), options: .atomic)) != nil
    }

    static var version: String {
        Bundle.main.object(forInfoDictionaryKey: "CFBundleShortVersionString") as? String ?? "0"
    }
}

enum Timestamp {
    static func now() -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date())
    }
}
