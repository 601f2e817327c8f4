// What the app was built with, read from Info.plist (project.yml sets it from the pinned
// ExecuTorch package), so every result says which runtime produced it.
import Foundation

enum RuntimeInfo {
    /// BenchfarmExecuTorchVersion in Info.plist (project.yml: EXECUTORCH_VERSION). "unknown"
    /// never passes the coordinator's runtime check, so a misbuilt app cannot post numbers.
    static var executorchVersion: String {
        Bundle.main.object(forInfoDictionaryKey: "BenchfarmExecuTorchVersion") as? String ?? "unknown"
    }

    static var appVersion: String {
        Bundle.main.object(forInfoDictionaryKey: "CFBundleShortVersionString") as? String ?? "0"
    }

    /// The backends project.yml links (backend_xnnpack, backend_coreml, backend_mps), by the
    /// ids programs name them with (the job's `runtime`).
    static let linkedBackends: Set<String> = ["XnnpackBackend", "CoreMLBackend", "MPSBackend"]
}
