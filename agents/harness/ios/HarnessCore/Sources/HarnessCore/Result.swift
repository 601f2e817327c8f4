// The result document (agents/harness/contract/result.schema.json): typed, encoded with every
// string cut to the schema's maxLength in code points and every array to its maxItems, so the
// harness cannot write a document the agent must refuse for its size. Decoding exists for the
// round-trip tests against the shared fixtures (agents/harness/contract/fixtures/).
import Foundation

public struct Battery: Equatable {
    public var level: Double
    public var charging: Bool?
    public var temperatureC: Double?

    public init(level: Double, charging: Bool? = nil, temperatureC: Double? = nil) {
        self.level = level
        self.charging = charging
        self.temperatureC = temperatureC
    }
}

public struct ResultOutput: Equatable {
    public var digest: String
    public var shape: [Int]
    public var top1: Int?
    public var head: [Double]?
    public var maxAbsError: Double?
    public var top1Agrees: Bool?

    public init(digest: String, shape: [Int], top1: Int? = nil, head: [Double]? = nil) {
        self.digest = digest
        self.shape = shape
        self.top1 = top1
        self.head = head
    }

    public init(_ s: OutputSummary) {
        self.init(digest: s.digest, shape: s.shape, top1: s.top1, head: s.head.allSatisfy { $0.isFinite } ? s.head : nil)
    }
}

public struct ResultDocument: Equatable {
    public var jobId = "unknown"
    public var attemptId = "unknown"
    public var attemptToken: Int64 = 0
    public var simulated = false
    public var producerName = "ios-harness"
    public var producerVersion = "0"
    public var device: [String: String] = ["model": "unknown", "os": "iOS", "os_version": "unknown"]
    public var backend = "unknown"
    public var status = "error"
    public var runtimeVersion: String?
    public var loadTimeMs: Double?
    public var latenciesMs: [Double]?
    public var warmupLatenciesMs: [Double]?
    public var preprocessMs: [Double]?
    public var postprocessMs: [Double]?
    public var peakMemoryBytes: UInt64?
    /// nil: absent; .some(nil): null (iOS exposes no per-process energy counter: null, never a guess)
    public var energyMjPerInference: Double??
    public var thermalBefore: String?
    public var thermalAfter: String?
    public var batteryBefore: Battery??
    public var batteryAfter: Battery??
    public var output: ResultOutput??
    public var error: HarnessError??
    /// The profiling pass's block ($defs/profile), kept as JSON: the harness only ever writes
    /// "unsupported" into it (ResultDocument.profileUnsupported).
    public var profile: JSONValue?
    /// $defs/frame_pipeline: the seed's per-frame stages summarised (FramePipeline.block).
    public var framePipeline: JSONValue?
    /// $defs/host_environment is the host driver's (CPU pinning, load); the phone never writes it,
    /// it is kept so a host document round-trips through the decoder and encoder.
    public var hostEnvironment: JSONValue?
    public var startedAt = ""
    public var finishedAt = ""

    public init() {}

    static let deviceLimits = ["model": 64, "name": 256, "chip": 128, "os": 32, "os_version": 64, "udid": 128]
    static let samplesLimits = ["latencies_ms": 100_000, "warmup_latencies_ms": 10000, "preprocess_ms": 100_000,
                                "postprocess_ms": 100_000]

    public mutating func fail(_ e: HarnessError) {
        status = "error"
        error = .some(e)
    }

    public var json: JSONValue {
        func s(_ v: String, _ n: Int) -> JSONValue { .string(bounded(v, n)) }
        func samples(_ xs: [Double], _ key: String) -> JSONValue {
            .array(xs.prefix(Self.samplesLimits[key]!).map { .double($0) })
        }
        func battery(_ b: Battery?) -> JSONValue {
            guard let b else { return .null }
            var o: [String: JSONValue] = ["level": .double(b.level)]
            if let c = b.charging { o["charging"] = .bool(c) }
            if let t = b.temperatureC { o["temperature_c"] = .double(t) }
            return .object(o)
        }
        var o: [String: JSONValue] = [
            "schema_version": .int(1), "job_id": s(jobId, 64), "attempt_id": s(attemptId, 64),
            "attempt_token": .int(attemptToken), "simulated": .bool(simulated),
            "producer": .object(["name": .string(producerName), "version": s(producerVersion, 64)]),
            "device": .object(Dictionary(uniqueKeysWithValues: device.compactMap { k, v in
                Self.deviceLimits[k].map { (k, s(v, $0)) } })),
            "backend": s(backend, 64), "status": .string(status),
            "started_at": s(startedAt, 40), "finished_at": s(finishedAt, 40),
        ]
        if let v = runtimeVersion { o["runtime_version"] = s(v, 64) }
        if let v = loadTimeMs { o["load_time_ms"] = .double(v) }
        for (key, value) in [("latencies_ms", latenciesMs), ("warmup_latencies_ms", warmupLatenciesMs),
                             ("preprocess_ms", preprocessMs), ("postprocess_ms", postprocessMs)] {
            if let xs = value { o[key] = samples(xs, key) }
        }
        if let v = peakMemoryBytes { o["peak_memory_bytes"] = .int(Int64(clamping: v)) }
        if let v = energyMjPerInference { o["energy_mj_per_inference"] = v.map { .double($0) } ?? .null }
        if let v = thermalBefore { o["thermal_before"] = .string(v) }
        if let v = thermalAfter { o["thermal_after"] = .string(v) }
        if let v = batteryBefore { o["battery_before"] = battery(v) }
        if let v = batteryAfter { o["battery_after"] = battery(v) }
        if let v = output {
            o["output"] = v.map { out in
                var b: [String: JSONValue] = ["digest": .string(out.digest),
                                              "shape": .array(out.shape.prefix(8).map { .int(Int64($0)) })]
                if let t = out.top1 { b["top1"] = .int(Int64(t)) }
                if let h = out.head { b["head"] = .array(h.prefix(64).map { .double($0) }) }
                if let m = out.maxAbsError { b["max_abs_error"] = .double(m) }
                if let a = out.top1Agrees { b["top1_agrees"] = .bool(a) }
                return .object(b)
            } ?? .null
        }
        if let v = error {
            o["error"] = v.map { .object(["category": .string($0.category.rawValue), "message": s($0.message, 4000)]) }
                ?? .null
        }
        if let v = profile { o["profile"] = v }
        if let v = framePipeline { o["frame_pipeline"] = v }
        if let v = hostEnvironment { o["host_environment"] = v }
        return .object(o)
    }

    /// The answer to a job that asks for a profile: the phone has no ETDump pass yet, and saying
    /// so keeps the timing result (a missing block would read as a lost profile).
    public static let profileUnsupported: JSONValue = .object([
        "status": .string("error"), "simulated": .bool(false), "source": .string("etdump"),
        "error": .object(["category": .string("unsupported"),
                          "message": .string("the iOS harness has no event-tracer (ETDump) profiling pass")]),
    ])

    public func encoded() -> Data { JSONWriter.data(json) }
}

extension ResultDocument {
    /// Decodes a result document; throws a HarnessError (.other) naming the field on a mismatch.
    public static func decode(_ doc: JSONValue) throws -> ResultDocument {
        guard case .object(let o) = doc else { throw HarnessError(.other, "result must be an object") }
        var r = ResultDocument()
        let f = Fields(o)
        r.jobId = try f.string("job_id", maxLength: 64)
        r.attemptId = try f.string("attempt_id", maxLength: 64)
        r.attemptToken = try f.integer("attempt_token", min: 0, max: Int64.max)
        guard case .bool(let sim) = o["simulated"] else { throw HarnessError.badJob("$.simulated", "must be a boolean") }
        r.simulated = sim
        let p = try f.object("producer", keys: ["name", "version"])
        (r.producerName, r.producerVersion) = (try p.string("name"), try p.string("version", minLength: 0))
        let d = try f.object("device", keys: Set(deviceLimits.keys))
        r.device = try Dictionary(uniqueKeysWithValues: d.o.keys.map { ($0, try d.string($0, minLength: 0)) })
        r.backend = try f.string("backend")
        r.status = try f.string("status")
        r.startedAt = try f.string("started_at")
        r.finishedAt = try f.string("finished_at")
        if o["runtime_version"] != nil { r.runtimeVersion = try f.string("runtime_version") }
        r.profile = o["profile"]
        r.framePipeline = o["frame_pipeline"]
        r.hostEnvironment = o["host_environment"]
        if o["load_time_ms"] != nil { r.loadTimeMs = try f.number("load_time_ms") }
        func samples(_ key: String) throws -> [Double]? {
            guard let v = o[key] else { return nil }
            guard case .array(let a) = v else { throw HarnessError.badJob("$.\(key)", "must be an array") }
            return try a.map { guard let d = $0.numberValue else { throw HarnessError.badJob("$.\(key)", "numbers") }; return d }
        }
        r.latenciesMs = try samples("latencies_ms")
        r.warmupLatenciesMs = try samples("warmup_latencies_ms")
        r.preprocessMs = try samples("preprocess_ms")
        r.postprocessMs = try samples("postprocess_ms")
        if o["peak_memory_bytes"] != nil { r.peakMemoryBytes = UInt64(try f.integer("peak_memory_bytes", min: 0, max: Int64.max)) }
        if let e = o["energy_mj_per_inference"] { r.energyMjPerInference = .some(e == .null ? nil : try f.number("energy_mj_per_inference")) }
        if o["thermal_before"] != nil { r.thermalBefore = try f.string("thermal_before") }
        if o["thermal_after"] != nil { r.thermalAfter = try f.string("thermal_after") }
        func battery(_ key: String) throws -> Battery?? {
            guard let v = o[key] else { return nil }
            if v == .null { return .some(nil) }
            let b = try f.object(key, keys: ["level", "charging", "temperature_c"])
            var out = Battery(level: try b.number("level"))
            if case .bool(let c) = b.o["charging"] { out.charging = c }
            if b.o["temperature_c"] != nil { out.temperatureC = try b.number("temperature_c") }
            return .some(out)
        }
        r.batteryBefore = try battery("battery_before")
        r.batteryAfter = try battery("battery_after")
        if let v = o["output"] {
            if v == .null { r.output = .some(nil) } else {
                let b = try f.object("output", keys: ["digest", "shape", "top1", "head", "max_abs_error", "top1_agrees"])
                var out = ResultOutput(digest: try b.string("digest"),
                                       shape: try b.integerArray("shape", minItems: 0, maxItems: 8, min: 0, max: Int64.max).map { Int($0) })
                if b.o["top1"] != nil { out.top1 = Int(try b.integer("top1", min: 0, max: Int64.max)) }
                if case .array(let h) = b.o["head"] { out.head = h.compactMap { $0.numberValue } }
                if b.o["max_abs_error"] != nil { out.maxAbsError = try b.number("max_abs_error") }
                if case .bool(let a) = b.o["top1_agrees"] { out.top1Agrees = a }
                r.output = .some(out)
            }
        }
        if let v = o["error"] {
            if v == .null { r.error = .some(nil) } else {
                let b = try f.object("error", keys: ["category", "message"])
                let name = try b.string("category")
                guard let cat = ErrorCategory(rawValue: name) else { throw HarnessError.badJob("$.error.category", name) }
                r.error = .some(HarnessError(cat, try b.string("message", minLength: 0)))
            }
        }
        return r
    }
}

extension HarnessError: Equatable {
    public static func == (a: HarnessError, b: HarnessError) -> Bool {
        a.category == b.category && a.message == b.message
    }
}
