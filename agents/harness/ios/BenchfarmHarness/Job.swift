// The job document (agents/harness/contract/job.schema.json), decoded with the schema's keys.
import Foundation

struct GoldenInputSpec: Decodable {
    let kind: String
    let seed: UInt64
}

struct Job: Decodable {
    let schemaVersion: Int
    let jobId: String
    let attemptId: String
    let attemptToken: Int
    let modelFile: String
    let modelSha256: String
    let backend: String
    let computeUnits: String
    let inputShape: [Int]
    let warmup: Int
    let iterations: Int
    let timeoutS: Double
    let goldenInput: GoldenInputSpec

    enum CodingKeys: String, CodingKey {
        case schemaVersion = "schema_version"
        case jobId = "job_id"
        case attemptId = "attempt_id"
        case attemptToken = "attempt_token"
        case modelFile = "model_file"
        case modelSha256 = "model_sha256"
        case backend
        case computeUnits = "compute_units"
        case inputShape = "input_shape"
        case warmup
        case iterations
        case timeoutS = "timeout_s"
        case goldenInput = "golden_input"
    }

    static func load(from url: URL) throws -> Job {
        let job = try JSONDecoder().decode(Job.self, from: Data(contentsOf: url))
        guard job.schemaVersion == 1 else { throw HarnessError.badJob("schema_version \(job.schemaVersion)") }
        // model_file is a bare name by contract; refuse anything that could leave Documents/.
        guard !job.modelFile.contains("/"), job.modelFile.hasSuffix(".pte") else {
            throw HarnessError.badJob("model_file must be a bare .pte name, got \(job.modelFile)")
        }
        guard job.goldenInput.kind == "seeded-uniform" else {
            throw HarnessError.badJob("golden_input.kind \(job.goldenInput.kind)")
        }
        return job
    }
}

enum HarnessError: Error {
    case badJob(String)
    case modelLoadFailed(String)
    case runtimeError(String)

    var category: String {
        switch self {
        case .badJob: return "bad_job"
        case .modelLoadFailed: return "model_load_failed"
        case .runtimeError: return "runtime_error"
        }
    }

    var message: String {
        switch self {
        case .badJob(let m), .modelLoadFailed(let m), .runtimeError(let m): return m
        }
    }
}
