// The ExecuTorch adapter: the program mmapped (not read into the heap, which would inflate the
// memory figure by the program's size), the job's compute units applied as the CoreML backend's
// load-time option, and ExecuTorch's error codes mapped onto the result's categories.
// API: extension/apple/ExecuTorch/Exported/ExecuTorchModule.h and ExecuTorch+Module.swift of the
// pinned release (project.yml).
import Foundation
import HarnessCore

/// ExecuTorchErrorDomain (ExecuTorchError.m); its codes are ExecuTorchErrorCode.
let executorchErrorDomain = "org.pytorch.executorch.error"

/// Maps an error thrown by ExecuTorch (an NSError in its domain) onto a result category.
func harnessError(_ error: Error, _ stage: RuntimeStage, _ what: String) -> HarnessError {
    if let e = error as? HarnessError { return e }
    let ns = error as NSError
    guard ns.domain == executorchErrorDomain else {
        return HarnessError(stage == .load ? .modelLoadFailed : .runtimeError, "\(what): \(ns.localizedDescription)")
    }
    let name = ExecuTorchErrorCode(rawValue: ns.code).map { "\($0)" } ?? "code \(ns.code)"
    return HarnessError(ExecuTorchErrorCode.category(code: ns.code, at: stage),
                        "\(what): ExecuTorch \(name) (\(ns.code)): \(ns.localizedDescription)")
}

/// The CoreML backend's id in a program and the runtime-spec key its delegate reads at load
/// time (backends/apple/coreml/runtime/delegate/coreml_backend_delegate.mm: "compute_unit",
/// values cpu_only / cpu_and_gpu / cpu_and_ne / all, the job schema's compute_units enum).
let coreMLBackendId = "CoreMLBackend"
let coreMLComputeUnitKey = "compute_unit"

#if canImport(ExecuTorch)
import ExecuTorch

final class ExecuTorchRunner: ProgramRunner {
    private var module: Module?
    private var input: (base: UnsafeMutablePointer<Float>, shape: [Int], tensor: Tensor<Float>)?

    var runtimeVersion: String { RuntimeInfo.executorchVersion }
    var backends: Set<String> { RuntimeInfo.linkedBackends }

    func load(programAt url: URL, job: Job) throws {
        let module = Module(filePath: url.path, loadMode: .mmap)
        do {
            if job.runtime == coreMLBackendId || job.backend.hasPrefix("coreml") {
                let options = try BackendOptionsMap(options: [
                    coreMLBackendId: [BackendOption(coreMLComputeUnitKey, job.computeUnits)],
                ])
                try module.load("forward", options: options)
            } else {
                try module.load("forward")
            }
        } catch {
            throw harnessError(error, .load, "loading \(job.modelFile)")
        }
        self.module = module
    }

    func forward(input buffer: UnsafeMutableBufferPointer<Float>, shape: [Int]) throws -> (values: [Float], shape: [Int]) {
        guard let module, let base = buffer.baseAddress else {
            throw HarnessError(.harnessCrash, "forward before load")
        }
        // One tensor over the session's input buffer: the preprocessing writes into it in place.
        if input?.base != base || input?.shape != shape {
            input = (base, shape, Tensor<Float>(bytesNoCopy: base, shape: shape, shapeDynamism: .static))
        }
        let outputs: [Value]
        do {
            outputs = try module.forward([input!.tensor])
        } catch {
            throw harnessError(error, .execute, "forward")
        }
        guard let tensor: Tensor<Float> = outputs.first?.tensor() else {
            throw HarnessError(.runtimeError, "output 0 is not a float32 tensor")
        }
        return (tensor.scalars(), tensor.shape)
    }
}
#endif
