// The benchfarm harness: launched by the agent (DVT process control), reads Documents/job.json,
// runs the benchmark, writes Documents/result.json and exits. The UI only shows progress for a
// human standing next to the phone.
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
        // Off the main thread so the UI stays responsive, at the highest QoS so the scheduler
        // does not park the benchmark on efficiency cores.
        Thread.detachNewThread { [weak self] in
            Thread.current.qualityOfService = .userInteractive
            let code = BenchmarkSession(documents: Documents.url).run()
            DispatchQueue.main.async {
                self?.status = code == 0 ? "done" : "failed (see result.json)"
                UIApplication.shared.isIdleTimerDisabled = false
                // The agent waits for result.json, then kills us anyway; exiting makes a
                // finished run and a crash distinguishable from "still running".
                exit(code)
            }
        }
    }
}

enum Documents {
    static var url: URL {
        FileManager.default.urls(for: .documentDirectory, in: .userDomainMask)[0]
    }
}
