// The job document (agents/harness/contract/job.schema.json), decoded and validated with the
// schema's keys and bounds. The agent validates before pushing; the harness validates again
// because it is the last line before a hostile number becomes an allocation or a file path.
import Foundation

public struct Job: Equatable {
    public var jobId: String
    public var attemptId: String
    public var attemptToken: Int64
    public var modelFile: String
    public var modelSha256: String
    public var backend: String
    public var runtime: String?
    public var computeUnits: String
    public var inputShape: [Int]
    public var inputResolution: Int64?
    public var batchSize: Int64?
    public var warmup: Int
    public var iterations: Int
    public var timeoutS: Double
    public var goldenSeed: UInt64
    /// The job asks for an event-tracer profiling pass (job.schema.json `profile`).
    public var profileRequested = false
    /// The run rule's minimum duration: keep iterating past `iterations` until the timed
    /// iterations have lasted this long (0: exactly `iterations`), at most `maxIterations`.
    public var minDurationS: Double = 0
    public static let maxIterations = 100_000

    /// job.json larger than this is not a job (a real one is well under 2 KB).
    public static let maxBytes = 64 * 1024
    /// Upper bound on the input tensor's elements (256 MB of float32): within the schema's
    /// per-dimension bounds a shape can still ask for 2^128 elements.
    public static let maxInputElements = 64 * 1024 * 1024
    public static let computeUnitValues = ["all", "cpu_and_ne", "cpu_and_gpu", "cpu_only"]
    static let keys: Set<String> = [
        "schema_version", "job_id", "attempt_id", "attempt_token", "model_file", "model_sha256", "backend",
        "runtime", "compute_units", "input_shape", "input_resolution", "batch_size", "warmup", "iterations",
        "timeout_s", "golden_input", "profile", "min_duration_s",
    ]
    static let profileKeys: Set<String> = ["iterations", "warmup", "timeout_s", "debug_buffer_bytes", "etrecord_file"]

    public var inputElementCount: Int {
        // validated at decode time, so this cannot overflow
        (try? Shape.elementCount(inputShape, limit: Self.maxInputElements)) ?? 0
    }

    /// Decodes and validates; every failure is a bad_job HarnessError naming the field.
    public static func decode(_ data: Data) throws -> Job {
        guard data.count <= maxBytes else {
            throw HarnessError.badJob("$", "\(data.count) bytes, over the \(maxBytes) limit")
        }
        let doc: JSONValue
        do {
            doc = try JSONParser.parse(data)
        } catch {
            throw HarnessError.badJob("$", "\(error)")
        }
        return try decode(doc)
    }

    public static func decode(_ doc: JSONValue) throws -> Job {
        guard case .object(let o) = doc else {
            throw HarnessError.badJob("$", "must be a JSON object, got \(doc.typeName)")
        }
        if let extra = o.keys.filter({ !keys.contains($0) }).sorted().first {
            throw HarnessError.badJob("$", "additional property '\(bounded(extra, 64))' is not allowed")
        }
        let f = Fields(o)
        _ = try f.integer("schema_version", min: 1, max: 1)
        let golden = try f.object("golden_input", keys: ["kind", "seed"])
        guard golden.o["kind"] == .string("seeded-uniform") else {
            throw HarnessError.badJob("$.golden_input.kind", "must be 'seeded-uniform'")
        }
        let seed = try golden.integer("seed", min: 0, max: Int64.max)
        let shape = try f.integerArray("input_shape", minItems: 1, maxItems: 8, min: 1, max: 65536)
        do {
            _ = try Shape.elementCount(shape, limit: maxInputElements)
        } catch let e as HarnessError {
            throw HarnessError.badJob("$.input_shape", e.message)
        }
        let timeout = try f.number("timeout_s")
        guard timeout > 0 else { throw HarnessError.badJob("$.timeout_s", "must be > 0") }
        let computeUnits = try f.string("compute_units")
        guard computeUnitValues.contains(computeUnits) else {
            throw HarnessError.badJob("$.compute_units", "must be one of \(computeUnitValues.joined(separator: ", "))")
        }
        let modelFile = try f.string("model_file")
        guard isBareProgramName(modelFile) else {
            throw HarnessError.badJob("$.model_file", "must be a bare name matching [A-Za-z0-9._-]{1,128}.pte")
        }
        let sha = try f.string("model_sha256")
        guard sha.utf8.count == 64, sha.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
        else { throw HarnessError.badJob("$.model_sha256", "must be 64 lowercase hex digits") }
        if o["profile"] != nil {
            let p = try f.object("profile", keys: profileKeys)
            _ = try p.integer("iterations", min: 1, max: 1000)
        }
        var job = Job(
            jobId: try f.string("job_id", maxLength: 64), attemptId: try f.string("attempt_id", maxLength: 64),
            attemptToken: try f.integer("attempt_token", min: 0, max: Int64.max), modelFile: modelFile,
            modelSha256: sha, backend: try f.string("backend"),
            runtime: o["runtime"] == nil ? nil : try f.string("runtime", minLength: 0), computeUnits: computeUnits,
            inputShape: shape.map { Int($0) },
            inputResolution: o["input_resolution"] == nil ? nil : try f.integer("input_resolution", min: 1, max: Int64.max),
            batchSize: o["batch_size"] == nil ? nil : try f.integer("batch_size", min: 1, max: Int64.max),
            warmup: Int(try f.integer("warmup", min: 0, max: 10000)),
            iterations: Int(try f.integer("iterations", min: 1, max: 100_000)),
            timeoutS: timeout, goldenSeed: UInt64(seed))
        job.profileRequested = o["profile"] != nil
        if o["min_duration_s"] != nil {
            let d = try f.number("min_duration_s")
            guard d >= 0, d <= 3600 else { throw HarnessError.badJob("$.min_duration_s", "\(d) outside 0...3600") }
            job.minDurationS = d
        }
        return job
    }

    /// Run another timed iteration after `done` of them lasting `timedS` seconds? Until both
    /// `iterations` and `minDurationS` are met (the Python harnesses' `more_iterations`).
    public func moreIterations(done: Int, timedS: Double) -> Bool {
        if done < iterations { return true }
        return done < Self.maxIterations && timedS < minDurationS
    }

    /// `^[A-Za-z0-9._-]{1,128}\.pte$`: a file name inside Documents/, never a path.
    static func isBareProgramName(_ name: String) -> Bool {
        let u = Array(name.utf8)
        guard u.count > 4, u.count <= 132, name.hasSuffix(".pte") else { return false }
        return u.dropLast(4).allSatisfy { b in
            (0x30...0x39).contains(b) || (0x41...0x5A).contains(b) || (0x61...0x7A).contains(b)
                || b == UInt8(ascii: ".") || b == UInt8(ascii: "_") || b == UInt8(ascii: "-")
        } && name != "..pte"
    }
}

/// Typed access to one object's members, with `$.path.key` in every error.
struct Fields {
    let o: [String: JSONValue]
    let path: String

    init(_ o: [String: JSONValue], path: String = "$") {
        self.o = o
        self.path = path
    }

    private func require(_ key: String) throws -> JSONValue {
        guard let v = o[key] else { throw HarnessError.badJob(path, "'\(key)' is a required property") }
        return v
    }

    func string(_ key: String, minLength: Int = 1, maxLength: Int = 4096) throws -> String {
        guard case .string(let s) = try require(key) else {
            throw HarnessError.badJob("\(path).\(key)", "must be a string")
        }
        let n = s.unicodeScalars.count
        guard n >= minLength, n <= maxLength else {
            throw HarnessError.badJob("\(path).\(key)", "length \(n) outside \(minLength)...\(maxLength)")
        }
        return s
    }

    func integer(_ key: String, min: Int64, max: Int64) throws -> Int64 {
        let v = try require(key)
        // jsonschema: a boolean is not an integer, 3.0 is
        guard case .int = v, let i = v.integerValue else {
            if case .double = v, let i = v.integerValue { return try inRange(key, i, min, max) }
            throw HarnessError.badJob("\(path).\(key)", "must be an integer, got \(v.typeName)")
        }
        return try inRange(key, i, min, max)
    }

    private func inRange(_ key: String, _ i: Int64, _ min: Int64, _ max: Int64) throws -> Int64 {
        guard i >= min, i <= max else { throw HarnessError.badJob("\(path).\(key)", "\(i) outside \(min)...\(max)") }
        return i
    }

    func number(_ key: String) throws -> Double {
        let v = try require(key)
        guard let d = v.numberValue, d.isFinite else {
            throw HarnessError.badJob("\(path).\(key)", "must be a number, got \(v.typeName)")
        }
        return d
    }

    func object(_ key: String, keys: Set<String>) throws -> Fields {
        guard case .object(let sub) = try require(key) else {
            throw HarnessError.badJob("\(path).\(key)", "must be an object")
        }
        if let extra = sub.keys.filter({ !keys.contains($0) }).sorted().first {
            throw HarnessError.badJob("\(path).\(key)", "additional property '\(bounded(extra, 64))' is not allowed")
        }
        return Fields(sub, path: "\(path).\(key)")
    }

    func integerArray(_ key: String, minItems: Int, maxItems: Int, min: Int64, max: Int64) throws -> [Int64] {
        guard case .array(let items) = try require(key) else {
            throw HarnessError.badJob("\(path).\(key)", "must be an array")
        }
        guard items.count >= minItems, items.count <= maxItems else {
            throw HarnessError.badJob("\(path).\(key)", "\(items.count) items, outside \(minItems)...\(maxItems)")
        }
        return try items.enumerated().map { i, item in
            guard item != .bool(true), item != .bool(false), let v = item.integerValue else {
                throw HarnessError.badJob("\(path).\(key)[\(i)]", "must be an integer, got \(item.typeName)")
            }
            guard v >= min, v <= max else {
                throw HarnessError.badJob("\(path).\(key)[\(i)]", "\(v) outside \(min)...\(max)")
            }
            return v
        }
    }
}
