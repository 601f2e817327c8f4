// UIKit readings for the result: identity, thermal state, battery. UIDevice is main-thread
// API; the session runs on its own thread, so each reading hops to the main queue.
import Foundation
import HarnessCore

#if canImport(UIKit) && canImport(Darwin)
import Darwin
import UIKit

/// ProcessInfo.ThermalState as the schema spells it (Apple's Foundation only: swift-foundation
/// on Linux has no thermal state).
func thermalName(_ state: ProcessInfo.ThermalState) -> String {
    switch state {
    case .nominal: return "nominal"
    case .fair: return "fair"
    case .serious: return "serious"
    case .critical: return "critical"
    @unknown default: return "unknown"
    }
}

struct IOSDeviceProbe: DeviceProbe {
    var producerVersion: String { RuntimeInfo.appVersion }

    private func onMain<T>(_ body: () -> T) -> T {
        Thread.isMainThread ? body() : DispatchQueue.main.sync(execute: body)
    }

    /// ProductType ("iPhone16,1"): what the catalog maps to a device class.
    static func productType() -> String {
        var sys = utsname()
        uname(&sys)
        return withUnsafeBytes(of: &sys.machine) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    func identity() -> [String: String] {
        let (name, version) = onMain { (UIDevice.current.name, UIDevice.current.systemVersion) }
        return ["model": Self.productType(), "name": name, "os": "iOS", "os_version": version]
    }

    func thermalState() -> String { thermalName(ProcessInfo.processInfo.thermalState) }

    /// nil when iOS reports no level (monitoring off, or no battery): null, never a guess.
    func battery() -> Battery? {
        let (level, state) = onMain { (UIDevice.current.batteryLevel, UIDevice.current.batteryState) }
        guard level >= 0 else { return nil }
        return Battery(level: Double(level) * 100.0, charging: state == .charging || state == .full)
    }

    func footprint() -> (current: UInt64, peak: UInt64) { MachMemory.footprint() }
}
#endif
