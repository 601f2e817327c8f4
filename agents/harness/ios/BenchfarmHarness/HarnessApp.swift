// The benchfarm harness: launched by the agent (DVT process control), reads Documents/job.json,
// runs the benchmark (HarnessCore.BenchmarkSession), writes Documents/result.json and exits.
// The UI only shows progress for a human standing next to the phone.
import Foundation
import HarnessCore

enum Documents {
    static var url: URL {
        FileManager.default.urls(for: .documentDirectory, in: .userDomainMask)[0]
    }
}

#if canImport(UIKit) && canImport(SwiftUI) && canImport(ExecuTorch)
import SwiftUI
import UIKit

@main
struct HarnessApp: App {
    @StateObject private var runner = HarnessRunner()

    var body: some Scene {
        WindowGroup {
            VStack(spacing: 12) {
                Text("benchfarm harness").font(.headline)
                Text(runner.status).font(.system(.body, design: .monospaced))
                Text("ExecuTorch \(RuntimeInfo.executorchVersion)").font(.footnote)
            }
            .padding()
            .onAppear { runner.start() }
        }
    }
}

@MainActor
final class HarnessRunner: ObservableObject {
    @Published var status = "waiting for job.json"
    private var started = false

    func start() {
        guard !started else { return }
        started = true
        // Auto-lock would suspend the app mid-run and stretch the timed iterations.
        UIApplication.shared.isIdleTimerDisabled = true
        UIDevice.current.isBatteryMonitoringEnabled = true
        status = "running"
        let preprocessor: FramePreprocessor = (try? VImagePreprocessor()) ?? PortablePreprocessor()
        let session = BenchmarkSession(documents: Documents.url, runner: ExecuTorchRunner(), probe: IOSDeviceProbe(),
                                       preprocessor: preprocessor, clock: MachClock(),
                                       onTimeout: { code in exit(code) })
        // Off the main thread so the UI stays responsive, at the highest QoS (set before the
        // thread starts, BenchmarkSession.start) so the scheduler keeps it on performance cores.
        session.start(qos: .userInteractive) { code in
            DispatchQueue.main.async {
                self.status = code == 0 ? "done" : "failed (see result.json)"
                UIApplication.shared.isIdleTimerDisabled = false
                // The agent waits for result.json, then kills us anyway; exiting makes a
                // finished run and a crash distinguishable from "still running".
                exit(code)
            }
        }
    }
}
#endif
