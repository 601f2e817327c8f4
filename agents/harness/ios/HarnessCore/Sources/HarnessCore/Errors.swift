// Error categories of the result schema (error.category) and how the harness's failures map
// onto them. The agent treats timeout/harness_crash/bad_job/other as infrastructure failures
// (retried elsewhere) and the rest as the model's own outcome (agents/runner.py).

public enum ErrorCategory: String, CaseIterable {
    case unsupportedOp = "unsupported_op"
    case modelLoadFailed = "model_load_failed"
    case runtimeError = "runtime_error"
    case outOfMemory = "out_of_memory"
    case timeout = "timeout"
    case harnessCrash = "harness_crash"
    case badJob = "bad_job"
    case other = "other"
}

public struct HarnessError: Error, CustomStringConvertible {
    public let category: ErrorCategory
    public let message: String

    public init(_ category: ErrorCategory, _ message: String) {
        self.category = category
        self.message = message
    }

    public var description: String { "\(category.rawValue): \(message)" }

    public static func badJob(_ field: String, _ reason: String) -> HarnessError {
        HarnessError(.badJob, "job document invalid at \(field): \(reason)")
    }
}

/// The stage a runtime error happened in: the same ExecuTorch code means a different thing
/// while loading (the program cannot be used) and while executing.
public enum RuntimeStage {
    case load
    case execute
}

/// ExecuTorch's error codes (runtime/core/error.h, mirrored by ExecuTorchErrorCode in
/// extension/apple/ExecuTorch/Exported/ExecuTorchError.h of the pinned release).
public enum ExecuTorchErrorCode: Int, CaseIterable {
    case ok = 0
    case `internal` = 1
    case invalidState = 2
    case endOfMethod = 3
    case notSupported = 16
    case notImplemented = 17
    case invalidArgument = 18
    case invalidType = 19
    case operatorMissing = 20
    case registrationExceedingMaxKernels = 21
    case registrationAlreadyRegistered = 22
    case notFound = 32
    case memoryAllocationFailed = 33
    case accessFailed = 34
    case invalidProgram = 35
    case invalidExternalData = 36
    case outOfResources = 37
    case delegateInvalidCompatibility = 48
    case delegateMemoryAllocationFailed = 49
    case delegateInvalidHandle = 50

    /// The result category for this code. A kernel or delegate the harness does not contain is
    /// the model's unsupported operator, not a crash; memory exhaustion is its own category so
    /// the matrix can say "does not fit" rather than "broken".
    public func category(at stage: RuntimeStage) -> ErrorCategory {
        switch self {
        case .operatorMissing, .notSupported, .notImplemented, .delegateInvalidCompatibility:
            return .unsupportedOp
        case .memoryAllocationFailed, .delegateMemoryAllocationFailed, .outOfResources:
            return .outOfMemory
        case .invalidProgram, .invalidExternalData, .notFound, .accessFailed, .registrationExceedingMaxKernels,
             .registrationAlreadyRegistered, .delegateInvalidHandle:
            return stage == .load ? .modelLoadFailed : .runtimeError
        case .ok, .internal, .invalidState, .endOfMethod, .invalidArgument, .invalidType:
            return stage == .load ? .modelLoadFailed : .runtimeError
        }
    }

    /// Category for a raw code; an unknown code is still the stage's generic failure.
    public static func category(code: Int, at stage: RuntimeStage) -> ErrorCategory {
        if let known = ExecuTorchErrorCode(rawValue: code) { return known.category(at: stage) }
        return stage == .load ? .modelLoadFailed : .runtimeError
    }
}

/// A string cut to at most `max` Unicode code points: the schema's maxLength counts code points
/// (jsonschema uses Python's len), not Swift Characters (a flag emoji is one Character, two
/// code points) and not UTF-16 units.
public func bounded(_ s: String, _ max: Int) -> String {
    let scalars = s.unicodeScalars
    guard scalars.count > max else { return s }
    var out = String.UnicodeScalarView()
    out.append(contentsOf: scalars.prefix(max))
    return String(out)
}
