// Device readings the result document carries: monotonic time, memory, thermal state, battery.
import Darwin
import Foundation
import UIKit

enum Clock {
    private static let timebase: mach_timebase_info_data_t = {
        var info = mach_timebase_info_data_t()
        mach_timebase_info(&info)
        return info
    }()

    static func now() -> UInt64 { mach_absolute_time() }

    static func ms(from start: UInt64, to end: UInt64) -> Double {
        Double(end - start) * Double(timebase.numer) / Double(timebase.denom) / 1_000_000.0
    }
}

enum Memory {
    /// phys_footprint is what jetsam judges the app by, so it is the memory figure that matters.
    /// Returns (current, lifetime peak); the peak comes from the kernel ledger where available.
    static func footprint() -> (current: UInt64, peak: UInt64) {
        var info = task_vm_info_data_t()
        var count = mach_msg_type_number_t(MemoryLayout<task_vm_info_data_t>.size / MemoryLayout<natural_t>.size)
        let kr = withUnsafeMutablePointer(to: &info) {
            $0.withMemoryRebound(to: integer_t.self, capacity: Int(count)) {
                task_info(mach_task_self_, task_flavor_t(TASK_VM_INFO), $0, &count)
            }
        }
        guard kr == KERN_SUCCESS else { return (0, 0) }
        return (info.phys_footprint, max(info.phys_footprint, info.ledger_phys_footprint_peak))
    }
}

enum Thermal {
    static func state() -> String {
        switch ProcessInfo.processInfo.thermalState {
        case .nominal: return "nominal"
        case .fair: return "fair"
        case .serious: return "serious"
        case .critical: return "critical"
        @unknown default: return "unknown"
        }
    }
}

enum Battery {
    /// nil when iOS does not report a level (battery monitoring off, or no battery).
    static func reading() -> [String: Any]? {
        let level = DispatchQueue.main.sync { UIDevice.current.batteryLevel }
        let state = DispatchQueue.main.sync { UIDevice.current.batteryState }
        guard level >= 0 else { return nil }
        return ["level": Double(level) * 100.0, "charging": state == .charging || state == .full]
    }
}

enum DeviceIdentity {
    /// ProductType ("iPhone16,1"): what the catalog maps to a device class.
    static func productType() -> String {
        var sys = utsname()
        uname(&sys)
        return withUnsafeBytes(of: &sys.machine) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    static func block() -> [String: Any] {
        let (name, version) = DispatchQueue.main.sync { (UIDevice.current.name, UIDevice.current.systemVersion) }
        return ["model": productType(), "name": name, "os": "iOS", "os_version": version]
    }
}
