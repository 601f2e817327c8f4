// Mach readings: the monotonic clock (mach_absolute_time and its timebase) and the memory
// footprint jetsam judges the app by (task_vm_info.phys_footprint and its lifetime peak).
#if canImport(Darwin)
import Darwin
import HarnessCore

struct MachClock: MonotonicClock {
    let timebase: Timebase = {
        var info = mach_timebase_info_data_t()
        mach_timebase_info(&info)
        return Timebase(numer: info.numer, denom: info.denom)
    }()

    func now() -> UInt64 { mach_absolute_time() }
}

enum MachMemory {
    /// (current, lifetime peak). phys_footprint is UInt64 and ledger_phys_footprint_peak is
    /// Int64 in task_vm_info_data_t: the peak is converted (a negative ledger reads as 0)
    /// before they are compared — `max` of the two types does not compile.
    static func footprint() -> (current: UInt64, peak: UInt64) {
        var info = task_vm_info_data_t()
        var count = mach_msg_type_number_t(MemoryLayout<task_vm_info_data_t>.size / MemoryLayout<natural_t>.size)
        let kr = withUnsafeMutablePointer(to: &info) {
            $0.withMemoryRebound(to: integer_t.self, capacity: Int(count)) {
                task_info(mach_task_self_, task_flavor_t(TASK_VM_INFO), $0, &count)
            }
        }
        guard kr == KERN_SUCCESS else { return (0, 0) }
        let current = UInt64(info.phys_footprint)
        let ledgerPeak = UInt64(clamping: max(Int64(0), Int64(info.ledger_phys_footprint_peak)))
        return (current, max(current, ledgerPeak))
    }
}
#endif
