import Foundation
import FunnelKernelsAVX2

/// Which matrix kernel the click models use, decided once per process.
public enum MatrixKernel: String, Sendable {
    /// 4 × 8 tiles of `SIMD8` in baseline x86-64 (SSE2) or the platform's baseline vectors.
    case baseline
    /// 4 × 16 tiles with AVX2 fused multiply-adds (`FunnelKernelsAVX2`).
    case avx2fma = "avx2+fma"

    /// AVX2 + FMA when the processor has both (Linux: the `flags` line of /proc/cpuinfo, which the
    /// kernel fills only for features it has enabled) and `FUNNEL_SIMD` is not `baseline`.
    public static let active: MatrixKernel = {
        if ProcessInfo.processInfo.environment["FUNNEL_SIMD"] == "baseline" { return .baseline }
        #if arch(x86_64) && os(Linux)
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return .baseline }
        let flags = Set(line.split(separator: " "))
        return flags.contains("avx2") && flags.contains("fma") ? .avx2fma : .baseline
        #else
        return .baseline
        #endif
    }()
}

/// A buffer or pointer handed to the threads of one `concurrentPerform`, alive for the whole
/// parallel section; the threads only read it, or each writes its own disjoint range.
struct Shared<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
