import Foundation
import FunnelKernelsAVX2

/// Which matrix kernel the click models use, decided once per process.
public enum MatrixKernel: String, Sendable {
    /// 4 × 8 tiles of `SIMD8` in baseline x86-64 (SSE2) or the platform's baseline vectors.
    case baseline
    /// 6 × 16 tiles with AVX2 fused multiply-adds (`FunnelKernelsAVX2`).
    case avx2fma = "avx2+fma"
    /// The AVX2 kernel with its wide strips: 6 × 32 tiles in 512-bit registers
    /// (`FunnelKernelsAVX512`), bit-identical results.
    case avx512 = "avx512f"

    /// Whether products go to the fused kernel (`FunnelKernelsAVX2.fusedGemm`).
    public var fused: Bool { self != .baseline }

    /// The widest kernel the processor has (Linux: the `flags` line of /proc/cpuinfo, which the
    /// kernel fills only for features it has enabled): AVX-512F with AVX2 and FMA, else AVX2 and
    /// FMA, else the baseline. `FUNNEL_SIMD=avx2` or `FUNNEL_SIMD=baseline` caps it there.
    public static let active: MatrixKernel = {
        let cap = ProcessInfo.processInfo.environment["FUNNEL_SIMD"]
        if cap == "baseline" { return .baseline }
        #if arch(x86_64) && os(Linux)
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return .baseline }
        let flags = Set(line.split(separator: " "))
        guard flags.contains("avx2") && flags.contains("fma") else { return .baseline }
        return flags.contains("avx512f") && cap != "avx2" ? .avx512 : .avx2fma
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
